"""
The mean REINFORCE update equals learning_rate x the exact policy gradient (eq. 4) on a small known MDP,
for both estimators and every baseline; the biased ``gamma_weighting=False`` variant is detected.
"""

from functools import cache

import numpy as np
import pytest
import torch as th

from sb3_reinforce.reinforce import sampled_policy_gradients

from tests.tabular_env import exact_linear_softmax_gradient, make_sgd_model, random_mdp, z_scores

HORIZON = 5
GAMMA = 0.8
LEARNING_RATE = 0.1
N_SAMPLES = 1500
# 8 components; a Bonferroni bound at 4.5 standard errors keeps a false alarm below 1e-4
Z_BOUND = 4.5


@cache
def sample_against_exact(estimator: str, baseline: str | None, gamma_weighting: bool = True, n_episodes: int = 1):
    model = make_sgd_model(
        seed=0,
        horizon=HORIZON,
        learning_rate=LEARNING_RATE,
        gamma=GAMMA,
        estimator=estimator,
        baseline=baseline,
        gamma_weighting=gamma_weighting,
        n_episodes=n_episodes,
    )
    # A policy far from uniform, so that every term of the gradient matters
    with th.no_grad():
        model.policy.action_net.weight.copy_(th.tensor([[1.0, -0.5, 0.3], [-0.7, 0.8, -0.2]]))
    exact = exact_linear_softmax_gradient(model, *random_mdp(seed=0), horizon=HORIZON)
    return sampled_policy_gradients(model, N_SAMPLES), exact


@pytest.mark.parametrize("estimator", ["episode_return", "reward_to_go"])
@pytest.mark.parametrize("baseline", [None, "mean", "value"])
def test_mean_update_is_exact_gradient(estimator, baseline):
    samples, exact = sample_against_exact(estimator, baseline, n_episodes=2 if baseline == "mean" else 1)
    scores = z_scores(samples, exact)
    assert np.abs(scores).max() < Z_BOUND, scores


def test_dropping_gamma_weighting_is_detected():
    samples, exact = sample_against_exact("reward_to_go", None, gamma_weighting=False)
    # The same check as above fails: the mean step is not the gradient of J
    assert np.abs(z_scores(samples, exact)).max() > Z_BOUND


def test_reward_to_go_has_lower_variance():
    variances = {}
    for estimator in ("episode_return", "reward_to_go"):
        samples, _ = sample_against_exact(estimator, None)
        variances[estimator] = sum(values.var(axis=0).sum() for values in samples.values())
    ratio = variances["reward_to_go"] / variances["episode_return"]
    print(f"per-episode estimator variance, REINFORCE-2 / REINFORCE-1: {ratio:.3f}")
    assert ratio < 0.8
