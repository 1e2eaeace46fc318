"""
Side by side with the planning setting: the mean update of a real REINFORCE model (a hidden layer, plain SGD)
equals ``exact_policy_gradient(model, mdp)`` on FrozenLake-v1 (4x4, slippery, horizon 12) and on a random MDP,
for both estimators; the biased ``gamma_weighting=False`` variant fails the same check on the random MDP.
(On slippery FrozenLake, a short horizon reaches the goal in about 2% of the episodes: the bias, about 10% of
the gradient there, would take far more than 1000 episodes to show.)
"""

from functools import cache

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_reinforce import REINFORCE
from sb3_reinforce.reinforce import sampled_policy_gradients
from sb3_reinforce.exact import TabularMDP, TabularMDPEnv, exact_policy_gradient
from tests.tabular_env import z_scores

LEARNING_RATE = 0.1
N_SAMPLES = 1000
# About 170 policy components: a Bonferroni bound at 5 standard errors keeps a false alarm below 1e-4
Z_BOUND = 5.0


def frozen_lake() -> tuple[TabularMDP, gym.Env]:
    horizon = 12
    env = gym.make("FrozenLake-v1", is_slippery=True, max_episode_steps=horizon)
    return TabularMDP.from_env(env, gamma=0.99, horizon=horizon), env


def random_mdp() -> tuple[TabularMDP, gym.Env]:
    horizon = 8
    mdp = TabularMDP.random(n_states=4, n_actions=3, gamma=0.8, horizon=horizon, seed=1)
    return mdp, gym.wrappers.TimeLimit(TabularMDPEnv(mdp), horizon)


MDPS = {"FrozenLake-v1": frozen_lake, "random": random_mdp}


@cache
def sampled_and_exact(mdp_name: str, estimator: str, gamma_weighting: bool = True) -> tuple[dict, dict]:
    mdp, env = MDPS[mdp_name]()
    model = REINFORCE(
        "MlpPolicy",
        make_vec_env(lambda: env, n_envs=1, seed=0),
        learning_rate=LEARNING_RATE,
        n_episodes=1,
        gamma=mdp.gamma,
        estimator=estimator,
        gamma_weighting=gamma_weighting,
        baseline="value",
        max_grad_norm=None,
        policy_kwargs=dict(net_arch=[8], optimizer_class=th.optim.SGD),
        seed=0,
    )
    with th.no_grad():
        # Away from uniform, so the gradient is sizeable (FrozenLake: towards down and right, where the goal is)
        if mdp_name == "FrozenLake-v1":
            model.policy.action_net.bias.copy_(th.tensor([-1.0, 1.0, 1.0, -1.0]))
        else:
            model.policy.action_net.weight.mul_(100.0)
    exact = {
        name: gradient.cpu().numpy()
        for name, gradient in exact_policy_gradient(model, mdp).items()
        if "value" not in name  # the value head is regressed, not part of grad J
    }
    return sampled_policy_gradients(model, N_SAMPLES), exact


@pytest.mark.parametrize("mdp_name", MDPS)
@pytest.mark.parametrize("estimator", ["episode_return", "reward_to_go"])
def test_mean_update_matches_exact_policy_gradient(mdp_name, estimator):
    samples, exact = sampled_and_exact(mdp_name, estimator)
    scores = z_scores(samples, exact)
    assert np.abs(scores).max() < Z_BOUND, np.sort(np.abs(scores))[-5:]


def test_biased_variant_is_detected():
    samples, exact = sampled_and_exact("random", "reward_to_go", gamma_weighting=False)
    scores = z_scores(samples, exact)
    print(f"max |z| of gamma_weighting=False: {np.abs(scores).max():.1f}")
    assert np.abs(scores).max() > Z_BOUND


def test_sampling_needs_plain_sgd_updates():
    with pytest.raises(ValueError, match="plain SGD"):
        sampled_policy_gradients(REINFORCE("MlpPolicy", "FrozenLake-v1"), 2)
    sgd = dict(policy_kwargs=dict(optimizer_class=th.optim.SGD))
    with pytest.raises(ValueError, match="max_grad_norm=None"):
        sampled_policy_gradients(REINFORCE("MlpPolicy", "FrozenLake-v1", **sgd), 2)
    with pytest.raises(ValueError, match="n_samples"):
        sampled_policy_gradients(REINFORCE("MlpPolicy", "FrozenLake-v1", max_grad_norm=None, **sgd), 1)
