"""
REINFORCE is unbiased: the mean of its updates, turned back into gradient estimates (plain SGD: step = lr * g_hat),
equals the exact policy gradient of the planning setting (``sb3_reinforce.exact.exact_policy_gradient``, eq. 4,
differentiated through the model's own network), for both estimators (eq. 3 and eq. 6) and every baseline on a random
MDP, and with no baseline and the value baseline on slippery FrozenLake. The same check fails on the biased
``gamma_weighting=False`` variant, and the reward-to-go estimator has the lower variance.
"""

from dataclasses import dataclass
from functools import cache

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_reinforce import REINFORCE
from sb3_reinforce.exact import TabularMDP, TabularMDPEnv, exact_policy_gradient
from sb3_reinforce.reinforce import sampled_policy_gradients
from tests.conftest import z_scores

LEARNING_RATE = 0.1


@dataclass(frozen=True)
class Problem:
    """
    A known MDP, the policy network sampled on it and the statistical bound of the check.

    :param net_arch: Hidden layers of the policy (``[]``: a linear softmax policy on one-hot states)
    :param n_samples: Updates sampled per check, each on fresh episodes
    :param z_bound: Bound on every component's |z-score|: a Bonferroni bound over the components that keeps the
        false-alarm rate of a check below 1e-4 (8 components: 4.5; about 170: 5.0)
    """

    net_arch: tuple[int, ...]
    n_samples: int
    z_bound: float

    def make(self, name: str) -> tuple[TabularMDP, gym.Env]:
        if name == "random":
            mdp = TabularMDP.random(n_states=3, n_actions=2, gamma=0.8, horizon=5, seed=0)
            return mdp, gym.wrappers.TimeLimit(TabularMDPEnv(mdp), mdp.horizon)
        # Slippery 4x4 FrozenLake cut at 12 steps: the goal is reached in about 2% of the episodes
        env = gym.make("FrozenLake-v1", is_slippery=True, max_episode_steps=12)
        return TabularMDP.from_env(env, gamma=0.99, horizon=12), env


PROBLEMS = {"random": Problem((), 1500, 4.5), "FrozenLake-v1": Problem((8,), 1000, 5.0)}
ESTIMATORS = ["episode_return", "reward_to_go"]
BASELINES = [None, "mean", "value"]


@cache
def sampled_and_exact(
    problem: str, estimator: str, baseline: str | None, gamma_weighting: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """
    :return: ``n_samples`` gradient estimates of REINFORCE's updates from one fixed policy, and the exact gradient of
        J at that policy, for the policy's parameters (the value head is regressed, it is not part of grad J)
    """
    mdp, env = PROBLEMS[problem].make(problem)
    model = REINFORCE(
        "MlpPolicy",
        make_vec_env(lambda: env, n_envs=1, seed=0),
        learning_rate=LEARNING_RATE,
        # The leave-one-out mean needs another episode in the batch
        n_episodes=2 if baseline == "mean" else 1,
        gamma=mdp.gamma,
        estimator=estimator,
        gamma_weighting=gamma_weighting,
        baseline=baseline,
        max_grad_norm=None,
        policy_kwargs=dict(net_arch=list(PROBLEMS[problem].net_arch), optimizer_class=th.optim.SGD),
        seed=0,
    )
    with th.no_grad():
        # Away from uniform, so that every term of the gradient matters (FrozenLake: towards the goal)
        if problem == "random":
            model.policy.action_net.weight.copy_(th.tensor([[1.0, -0.5, 0.3], [-0.7, 0.8, -0.2]]))
        else:
            model.policy.action_net.bias.copy_(th.tensor([-1.0, 1.0, 1.0, -1.0]))
    exact = {
        name: gradient.cpu().numpy() for name, gradient in exact_policy_gradient(model, mdp).items() if "value" not in name
    }
    return sampled_policy_gradients(model, PROBLEMS[problem].n_samples), exact


@pytest.mark.parametrize(
    "problem, estimator, baseline",
    [("random", estimator, baseline) for estimator in ESTIMATORS for baseline in BASELINES]
    # The leave-one-out mean is left out on FrozenLake: some states are reached so rarely that 1000 updates of two
    # episodes never move their weights, while their exact gradient is about 1e-6 (a z-score is undefined there)
    + [
        pytest.param("FrozenLake-v1", estimator, baseline, marks=pytest.mark.slow)
        for estimator in ESTIMATORS
        for baseline in (None, "value")
    ],
)
def test_mean_update_is_the_exact_gradient(problem: str, estimator: str, baseline: str | None) -> None:
    samples, exact = sampled_and_exact(problem, estimator, baseline)
    scores = np.abs(z_scores(samples, exact))
    assert scores.max() < PROBLEMS[problem].z_bound, np.sort(scores)[-5:]


def test_dropping_gamma_weighting_is_detected() -> None:
    # The same check fails: without eq. (6)'s gamma^h the mean update is not the gradient of J
    samples, exact = sampled_and_exact("random", "reward_to_go", None, gamma_weighting=False)
    assert np.abs(z_scores(samples, exact)).max() > PROBLEMS["random"].z_bound


def test_reward_to_go_has_the_lower_variance() -> None:
    variances = {}
    for estimator in ESTIMATORS:
        samples, _ = sampled_and_exact("random", estimator, None)
        variances[estimator] = sum(samples[name].var(axis=0).sum() for name in ("action_net.weight", "action_net.bias"))
    ratio = variances["reward_to_go"] / variances["episode_return"]
    print(f"per-episode estimator variance, REINFORCE-2 / REINFORCE-1: {ratio:.3f}")
    assert ratio < 0.8


def test_sampling_needs_plain_sgd_updates() -> None:
    with pytest.raises(ValueError, match="plain SGD"):
        sampled_policy_gradients(REINFORCE("MlpPolicy", "FrozenLake-v1"), 2)
    sgd = dict(policy_kwargs=dict(optimizer_class=th.optim.SGD))
    with pytest.raises(ValueError, match="max_grad_norm=None"):
        sampled_policy_gradients(REINFORCE("MlpPolicy", "FrozenLake-v1", **sgd), 2)
    with pytest.raises(ValueError, match="n_samples"):
        sampled_policy_gradients(REINFORCE("MlpPolicy", "FrozenLake-v1", max_grad_norm=None, **sgd), 1)
