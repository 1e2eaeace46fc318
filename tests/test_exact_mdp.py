import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_reinforce.exact import (
    TabularMDP,
    TabularMDPEnv,
    differentiable_objective,
    enumerate_trajectories,
    softmax_policy,
    value_iteration,
)

HORIZONS = [None, 1, 6]


def random_policy(mdp: TabularMDP, seed: int) -> np.ndarray:
    return softmax_policy(np.random.default_rng(seed).standard_normal((mdp.n_states, mdp.n_actions)))


def valid_arrays(n_states: int = 3, n_actions: int = 2) -> dict:
    mdp = TabularMDP.random(n_states, n_actions, gamma=0.9, seed=0)
    return dict(
        transitions=mdp.transitions.copy(),
        rewards=mdp.rewards.copy(),
        gamma=0.9,
        initial_distribution=mdp.initial_distribution.copy(),
    )


@pytest.mark.parametrize(
    "changes, error, match",
    [
        (dict(transitions=np.ones((3, 2))), ValueError, r"shape \(S, A, S\)"),
        (dict(transitions=np.full((3, 2, 3), 0.5)), ValueError, "at most 1"),
        (dict(transitions=-np.full((3, 2, 3), 0.1)), ValueError, "non-negative"),
        (dict(transitions=np.full((3, 2, 3), np.nan)), ValueError, "finite"),
        (dict(rewards=np.zeros((2, 3))), ValueError, r"shape \(S, A\)"),
        (dict(rewards=np.full((3, 2), np.inf)), ValueError, "finite"),
        (dict(initial_distribution=np.ones(3)), ValueError, "sum to 1"),
        (dict(initial_distribution=np.ones(2) / 2), ValueError, r"shape \(3,\)"),
        (dict(gamma=1.5), ValueError, r"gamma must be in \[0, 1\]"),
        (dict(gamma=-0.1), ValueError, r"gamma must be in \[0, 1\]"),
        (dict(gamma="0.9"), TypeError, "gamma must be a float"),
        (dict(gamma=1.0), ValueError, "only allowed with a finite horizon"),
        (dict(horizon=0), ValueError, "positive int"),
        (dict(horizon=2.5), TypeError, "positive int"),
        (dict(horizon=True), TypeError, "positive int"),
    ],
)
def test_invalid_mdp(changes: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        TabularMDP(**{**valid_arrays(), **changes})


def test_valid_mdp() -> None:
    mdp = TabularMDP(**valid_arrays(), horizon=np.int64(4))
    assert (mdp.n_states, mdp.n_actions, mdp.horizon) == (3, 2, 4)
    assert TabularMDP(**{**valid_arrays(), "gamma": 1}, horizon=3).gamma == 1.0
    with pytest.raises(ValueError, match="read-only"):
        mdp.transitions[0, 0, 0] = 1.0
    # The MDP owns copies: the caller's arrays stay writable
    arrays = valid_arrays()
    TabularMDP(**arrays)
    assert all(array.flags.writeable for array in (arrays["transitions"], arrays["rewards"], arrays["initial_distribution"]))


@pytest.mark.parametrize(
    "pi, match",
    [
        (np.full((3, 3), 1 / 3), r"shape \(3, 2\)"),
        (np.full((3, 2), 0.6), "sum to 1"),
        (np.array([[1.5, -0.5]] * 3), "non-negative"),
    ],
)
def test_invalid_policy(pi: np.ndarray, match: str) -> None:
    mdp = TabularMDP.random(3, 2, gamma=0.9, seed=0)
    with pytest.raises(ValueError, match=match):
        mdp.evaluate(pi)
    with pytest.raises(ValueError, match=match):
        differentiable_objective(mdp, th.as_tensor(pi))


@pytest.mark.parametrize("horizon", HORIZONS)
def test_bellman_equations(horizon: int | None) -> None:
    mdp = TabularMDP.random(5, 3, gamma=0.8, horizon=horizon, seed=1)
    pi = random_policy(mdp, seed=2)
    evaluation = mdp.evaluate(pi)
    next_values = evaluation.V if horizon is None else evaluation.V_h[1]
    np.testing.assert_allclose(evaluation.Q, mdp.rewards + mdp.gamma * mdp.transitions @ next_values, atol=1e-12)
    np.testing.assert_allclose(evaluation.V, (pi * evaluation.Q).sum(axis=1), atol=1e-12)
    np.testing.assert_allclose((pi * evaluation.A).sum(axis=1), 0.0, atol=1e-12)
    assert evaluation.J == pytest.approx(mdp.initial_distribution @ evaluation.V, abs=1e-12)
    # J = E_{(s,a) ~ d^pi}[R(s, a)], eq. (5) with f = R
    assert evaluation.J == pytest.approx((evaluation.d * mdp.rewards).sum(), abs=1e-12)


def test_occupancy_mass() -> None:
    # Without termination, sum_{s,a} d(s, a) = sum_h gamma^h
    mdp = TabularMDP.random(4, 2, gamma=0.9, termination_probability=0.0, seed=0)
    pi = random_policy(mdp, seed=1)
    assert mdp.evaluate(pi).d.sum() == pytest.approx(1 / (1 - 0.9), abs=1e-12)
    finite = TabularMDP(mdp.transitions, mdp.rewards, 0.9, mdp.initial_distribution, horizon=5).evaluate(pi)
    np.testing.assert_allclose(finite.d_h.sum(axis=(1, 2)), 1.0, atol=1e-12)
    assert finite.d.sum() == pytest.approx(sum(0.9**h for h in range(5)), abs=1e-12)
    # With termination probability 0.1 at every step, Pr(alive at h) = 0.9^h
    terminating = TabularMDP.random(4, 2, gamma=1.0, horizon=5, termination_probability=0.1, seed=0)
    np.testing.assert_allclose(terminating.evaluate(pi).d_h.sum(axis=(1, 2)), 0.9 ** np.arange(5), atol=1e-12)


def test_long_finite_horizon_matches_infinite_horizon() -> None:
    infinite = TabularMDP.random(4, 3, gamma=0.5, seed=3)
    finite = TabularMDP(infinite.transitions, infinite.rewards, 0.5, infinite.initial_distribution, horizon=80)
    pi = random_policy(infinite, seed=4)
    for name in ("J", "V", "Q", "A", "d"):
        np.testing.assert_allclose(getattr(finite.evaluate(pi), name), getattr(infinite.evaluate(pi), name), atol=1e-12)


@pytest.mark.parametrize("gamma", [0.7, 1.0])
def test_objective_matches_trajectory_enumeration(gamma: float) -> None:
    # J(pi) = sum_tau R(tau) P^pi(tau), the starting point of eq. (2)
    mdp = TabularMDP.random(3, 2, gamma=gamma, horizon=4, seed=5)
    pi = random_policy(mdp, seed=6)
    trajectories = list(enumerate_trajectories(mdp, pi))
    assert sum(t.probability for t in trajectories) == pytest.approx(1.0, abs=1e-12)
    assert sum(t.probability * t.discounted_return for t in trajectories) == pytest.approx(mdp.evaluate(pi).J, abs=1e-12)


def test_enumeration_validation() -> None:
    pi = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="finite horizon"):
        next(enumerate_trajectories(TabularMDP.random(3, 2, gamma=0.9, seed=0), pi))
    with pytest.raises(ValueError, match="tiny MDPs"):
        next(enumerate_trajectories(TabularMDP.random(3, 2, gamma=0.9, horizon=12, seed=0), pi))


@pytest.mark.parametrize("horizon", HORIZONS)
def test_differentiable_objective_matches_evaluation(horizon: int | None) -> None:
    mdp = TabularMDP.random(5, 3, gamma=0.95, horizon=horizon, seed=7)
    pi = random_policy(mdp, seed=8)
    objective = differentiable_objective(mdp, th.as_tensor(pi, dtype=th.float32))
    assert objective.dtype == th.float64
    assert objective.item() == pytest.approx(mdp.evaluate(pi).J, abs=1e-6)  # float32 policy input
    assert differentiable_objective(mdp, th.as_tensor(pi)).item() == pytest.approx(mdp.evaluate(pi).J, abs=1e-12)


def test_frozen_lake_model() -> None:
    env = gym.make("FrozenLake-v1")
    mdp = TabularMDP.from_env(env, gamma=0.99)
    assert (mdp.n_states, mdp.n_actions, mdp.horizon) == (16, 4, None)
    np.testing.assert_array_equal(mdp.initial_distribution, np.eye(16)[0])
    # Slippery: from state 14, RIGHT reaches the goal 15 with probability 1/3 (reward 1, terminated)
    assert mdp.rewards[14, 2] == pytest.approx(1 / 3)
    assert mdp.transitions[14, 2].sum() == pytest.approx(2 / 3)
    # Holes and the goal are terminal: no transition ever leads into them
    assert mdp.transitions[:, :, [5, 7, 11, 12, 15]].sum() == 0.0
    finite = TabularMDP.from_env(env, gamma=1.0, horizon=env.spec.max_episode_steps)
    assert finite.horizon == 100


def test_deterministic_frozen_lake_values() -> None:
    # The shortest path to the goal takes 6 transitions, the last one rewarded: J = gamma^5
    env = gym.make("FrozenLake-v1", is_slippery=False)
    assert value_iteration(TabularMDP.from_env(env, gamma=0.9)).J == pytest.approx(0.9**5, abs=1e-9)
    assert value_iteration(TabularMDP.from_env(env, gamma=0.9, horizon=6)).J == pytest.approx(0.9**5, abs=1e-15)
    assert value_iteration(TabularMDP.from_env(env, gamma=0.9, horizon=5)).J == 0.0


def test_cliff_walking_values() -> None:
    # The optimal path runs along the cliff: 13 transitions rewarded -1, the last one terminal
    mdp = TabularMDP.from_env(gym.make("CliffWalking-v1"), gamma=0.9)
    assert mdp.initial_distribution[36] == 1.0
    assert value_iteration(mdp).J == pytest.approx(-sum(0.9**h for h in range(13)), abs=1e-8)


def test_taxi_model() -> None:
    mdp = TabularMDP.from_env(gym.make("Taxi-v4"), gamma=0.99)
    assert (mdp.n_states, mdp.n_actions) == (500, 6)
    assert mdp.initial_distribution.sum() == pytest.approx(1.0)
    row_sums = mdp.transitions.sum(axis=2)
    terminating = np.isclose(row_sums, 0.0)
    assert np.all(terminating | np.isclose(row_sums, 1.0))
    # Only a successful drop-off (action 5, reward 20) ends the episode
    assert terminating.any() and np.all(mdp.rewards[terminating] == 20.0)
    assert np.all(np.nonzero(terminating)[1] == 5)


class NoInitialDistributionEnv(gym.Env):
    """Two-state toy-text-like env without ``initial_state_distrib``: it starts in state 0 or 1 uniformly."""

    observation_space = spaces.Discrete(3)
    action_space = spaces.Discrete(1)
    P = {s: {0: [(1.0, 2, 1.0, True)]} for s in range(3)}  # noqa: RUF012

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        return int(self.np_random.integers(2)), {}


def test_empirical_initial_distribution() -> None:
    mdp = TabularMDP.from_env(NoInitialDistributionEnv(), gamma=0.9, n_resets=400)
    assert mdp.initial_distribution[2] == 0.0
    assert mdp.initial_distribution[0] == pytest.approx(0.5, abs=0.1)
    assert mdp.rewards[:, 0].tolist() == [1.0, 1.0, 1.0]
    assert mdp.transitions.sum() == 0.0


def test_from_env_validation() -> None:
    with pytest.raises(TypeError, match=r"env\.unwrapped\.P"):
        TabularMDP.from_env(gym.make("CartPole-v1"), gamma=0.9)
    with pytest.raises(ValueError, match="n_resets"):
        TabularMDP.from_env(NoInitialDistributionEnv(), gamma=0.9, n_resets=0)


def test_env_samples_float32_tables() -> None:
    # Rows that sum to 1 in float32 are off by about 1e-8 in float64: within the MDP's tolerance, not numpy's
    mdp = TabularMDP.random(n_states=7, n_actions=3, gamma=0.9, termination_probability=0.0, seed=0)
    transitions32 = mdp.transitions.astype(np.float32)
    mdp32 = TabularMDP(transitions32, mdp.rewards, 0.9, mdp.initial_distribution.astype(np.float32))
    env = TabularMDPEnv(mdp32)
    env.reset(seed=0)
    for _ in range(200):
        _, _, terminated, _, _ = env.step(int(env.np_random.integers(3)))
        assert not terminated


def test_gamma_too_close_to_one_warns() -> None:
    mdp = TabularMDP.random(n_states=3, n_actions=2, gamma=1 - 1e-16, termination_probability=0.0, seed=0)
    with pytest.warns(RuntimeWarning, match="condition number"):
        mdp.evaluate(np.full((3, 2), 0.5))
    close_enough = TabularMDP.random(n_states=3, n_actions=2, gamma=0.999, termination_probability=0.0, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        close_enough.evaluate(np.full((3, 2), 0.5))
