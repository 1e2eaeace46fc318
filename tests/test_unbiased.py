"""
REINFORCE is unbiased: on a known MDP, the mean of its plain-SGD updates, each turned back into a gradient estimate
(step = learning_rate * g_hat), equals the exact policy gradient of the planning setting,
``sb3_reinforce.exact.exact_policy_gradient`` (eq. 4, differentiated through the model's own network), for both
estimators (eq. 3 and eq. 6) and every baseline. The same check fails on the biased ``gamma_weighting=False``
variant, and the reward-to-go estimator has the lower variance.
"""

from collections.abc import Callable
from functools import cache

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_reinforce import REINFORCE
from sb3_reinforce.exact import TabularMDP, TabularMDPEnv, exact_policy_gradient
from sb3_reinforce.reinforce import sampled_policy_gradients
from tests.conftest import sgd_model, z_bound, z_scores

ESTIMATORS = ["episode_return", "reward_to_go"]
BASELINES = [None, "mean", "value"]
# Episodes per update, one per env: each sample is a mean over a batch, close enough to normal for z_bound
N_EPISODES = 16
# Updates per check: the default run's, and the slow run's sharper check (it shows a bias about 2 times smaller)
N_UPDATES = 100
N_UPDATES_SLOW = 500
# The check: no |z-score| of a policy component above z_bound, Bonferroni over the components with Student's t
# quantiles, so that an unbiased estimator fails it with probability below 1e-4. 67 components on the random MDP
# (bound 5.12 at 100 updates, 4.87 at 500), 172 on FrozenLake (5.06 at 500).


def random_mdp() -> tuple[TabularMDP, Callable[[], gym.Env]]:
    mdp = TabularMDP.random(n_states=4, n_actions=3, gamma=0.8, horizon=8, seed=1)
    return mdp, lambda: gym.wrappers.TimeLimit(TabularMDPEnv(mdp), mdp.horizon)


def frozen_lake() -> tuple[TabularMDP, Callable[[], gym.Env]]:
    # Slippery 4x4 FrozenLake cut at 12 steps: the goal is rarely reached
    def make_env() -> gym.Env:
        return gym.make("FrozenLake-v1", is_slippery=True, max_episode_steps=12)

    return TabularMDP.from_env(make_env(), gamma=0.99, horizon=12), make_env


MDPS = {"random": random_mdp, "FrozenLake-v1": frozen_lake}


def move_away_from_uniform(model: REINFORCE, mdp_name: str) -> None:
    """A policy far from uniform, so that every term of the gradient matters (FrozenLake: towards the goal)."""
    with th.no_grad():
        if mdp_name == "FrozenLake-v1":
            # Actions left, down, right, up
            model.policy.action_net.bias.copy_(th.tensor([-1.0, 1.0, 1.0, -1.0]))
        else:
            # SB3 initialises the action head orthogonally with gain 0.01: gain 1 instead
            model.policy.action_net.weight.mul_(100.0)


@cache
def sampled_and_exact(
    mdp_name: str, n_updates: int, estimator: str, baseline: str | None, gamma_weighting: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """
    :return: ``n_updates`` gradient estimates of REINFORCE's updates from one fixed policy, and the exact gradient of J
        at that policy, for the policy's parameters (the value head is regressed, it is not part of grad J)
    """
    mdp, make_env = MDPS[mdp_name]()
    model = sgd_model(mdp, make_env, N_EPISODES, estimator=estimator, baseline=baseline, gamma_weighting=gamma_weighting)
    move_away_from_uniform(model, mdp_name)
    exact = {
        name: gradient.cpu().numpy() for name, gradient in exact_policy_gradient(model, mdp).items() if "value" not in name
    }
    return sampled_policy_gradients(model, n_updates), exact


def exceeds_bound(samples: dict[str, np.ndarray], exact: dict[str, np.ndarray]) -> tuple[bool, np.ndarray]:
    """
    The check: does any component's |z-score| exceed the Bonferroni bound that an unbiased estimator exceeds with
    probability below 1e-4 (``z_bound``)?

    :return: The answer, and the five largest |z-scores|
    """
    scores = np.abs(z_scores(samples, exact))
    n_samples = len(next(iter(samples.values())))
    return bool(scores.max() > z_bound(len(scores), n_samples)), np.sort(scores)[-5:]


@pytest.mark.parametrize(
    "mdp_name, n_updates, estimator, baseline",
    [("random", N_UPDATES, estimator, baseline) for estimator in ESTIMATORS for baseline in BASELINES]
    + [
        pytest.param("random", N_UPDATES_SLOW, estimator, baseline, marks=pytest.mark.slow)
        for estimator in ESTIMATORS
        for baseline in BASELINES
    ]
    # FrozenLake with the value baseline only: without it, only the few rewarded episodes move the weights, and the
    # z-scores of rarely visited states are far from normal (the two estimators coincide there besides: one reward)
    + [pytest.param("FrozenLake-v1", N_UPDATES_SLOW, estimator, "value", marks=pytest.mark.slow) for estimator in ESTIMATORS],
)
def test_mean_update_is_the_exact_gradient(mdp_name: str, n_updates: int, estimator: str, baseline: str | None) -> None:
    """Every component of the mean update is within the bound of the exact gradient's."""
    exceeded, largest_scores = exceeds_bound(*sampled_and_exact(mdp_name, n_updates, estimator, baseline))
    assert not exceeded, largest_scores


def test_dropping_gamma_weighting_fails_the_check() -> None:
    """Without eq. (6)'s gamma^h the mean update is not the gradient of J: the same check, with as many updates, fails."""
    exceeded, largest_scores = exceeds_bound(*sampled_and_exact("random", N_UPDATES, "reward_to_go", None, False))
    assert exceeded, largest_scores


def test_reward_to_go_has_the_lower_variance() -> None:
    """Eq. (6)'s estimator varies less than eq. (3)'s, both without a baseline."""
    variances = {}
    for estimator in ESTIMATORS:
        samples, exact = sampled_and_exact("random", N_UPDATES, estimator, None)
        variances[estimator] = sum(samples[name].var(axis=0).sum() for name in exact)
    ratio = variances["reward_to_go"] / variances["episode_return"]
    print(f"variance of the update, REINFORCE-2 / REINFORCE-1: {ratio:.3f}")
    assert ratio < 0.8


def test_sampling_needs_plain_sgd_updates() -> None:
    """The sampler refuses a model whose update is not ``learning_rate * g_hat``, and a single sample."""
    with pytest.raises(ValueError, match="plain SGD"):
        sampled_policy_gradients(REINFORCE("MlpPolicy", "FrozenLake-v1"), 2)
    sgd = dict(policy_kwargs=dict(optimizer_class=th.optim.SGD))
    with pytest.raises(ValueError, match="max_grad_norm=None"):
        sampled_policy_gradients(REINFORCE("MlpPolicy", "FrozenLake-v1", **sgd), 2)
    with pytest.raises(ValueError, match="n_samples"):
        sampled_policy_gradients(REINFORCE("MlpPolicy", "FrozenLake-v1", max_grad_norm=None, **sgd), 1)
