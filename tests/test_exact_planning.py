import itertools

import gymnasium as gym
import numpy as np
import pytest

from sb3_reinforce.exact import TabularMDP, policy_gradient_ascent, value_iteration


def deterministic_policies(mdp: TabularMDP) -> list[np.ndarray]:
    return [np.eye(mdp.n_actions)[list(actions)] for actions in itertools.product(range(mdp.n_actions), repeat=mdp.n_states)]


@pytest.mark.parametrize("horizon", [None, 5])
def test_value_iteration_beats_every_deterministic_stationary_policy(horizon: int | None) -> None:
    mdp = TabularMDP.random(4, 3, gamma=0.9, horizon=horizon, seed=0)
    optimum = value_iteration(mdp)
    best = max(mdp.evaluate(pi).J for pi in deterministic_policies(mdp))
    if horizon is None:
        # A stationary deterministic policy is optimal, and the greedy one is it
        assert optimum.J == pytest.approx(best, abs=1e-9)
        assert mdp.evaluate(optimum.policy).J == pytest.approx(best, abs=1e-9)
    else:
        # With a finite horizon the optimal policy may depend on the timestep: J* bounds stationary policies
        assert optimum.J >= best - 1e-12
        assert optimum.policy_h.shape == (5, 4, 3)
        np.testing.assert_array_equal(optimum.policy, optimum.policy_h[0])
        np.testing.assert_array_equal(optimum.V_h[-1], 0.0)


def test_long_finite_horizon_value_iteration_matches_infinite_horizon() -> None:
    infinite = TabularMDP.random(4, 3, gamma=0.5, seed=1)
    finite = TabularMDP(infinite.transitions, infinite.rewards, 0.5, infinite.initial_distribution, horizon=80)
    np.testing.assert_allclose(value_iteration(finite).V, value_iteration(infinite).V, atol=1e-9)


def test_policy_gradient_ascent_on_frozen_lake() -> None:
    mdp = TabularMDP.from_env(gym.make("FrozenLake-v1"), gamma=0.99)
    optimum = value_iteration(mdp)
    result = policy_gradient_ascent(mdp, learning_rate=1000.0, n_iterations=1500)
    history = result.J_history
    assert history.shape == (1501,)
    assert history[0] == pytest.approx(0.0124, abs=1e-4)  # the uniform policy
    assert optimum.J == pytest.approx(0.5420, abs=1e-4)
    # The exact gradient with a small enough step makes every update an ascent step
    assert np.all(np.diff(history) >= -1e-12)
    # Softmax policy gradient converges only at rate O(1/t) (Mei et al., 2020) and passes a plateau near J = 0.5325:
    # after 1500 steps the gap is about 1e-5, while no stationary policy can exceed J* (up to the VI tolerance)
    assert optimum.J - 1e-4 <= history[-1] <= optimum.J + 1e-8
    assert mdp.evaluate(result.pi).J == history[-1]


def test_planning_validation() -> None:
    mdp = TabularMDP.random(3, 2, gamma=0.9, seed=0)
    with pytest.raises(ValueError, match="learning_rate must be a positive float"):
        policy_gradient_ascent(mdp, learning_rate=0.0, n_iterations=10)
    with pytest.raises(TypeError, match="n_iterations must be an int >= 0"):
        policy_gradient_ascent(mdp, learning_rate=1.0, n_iterations=2.5)
    with pytest.raises(ValueError, match=r"shape \(S, A\) = \(3, 2\)"):
        policy_gradient_ascent(mdp, learning_rate=1.0, n_iterations=1, initial_theta=np.zeros(3))
    with pytest.raises(ValueError, match="tolerance must be a positive float"):
        value_iteration(mdp, tolerance=0.0)
    with pytest.raises(RuntimeError, match="did not reach"):
        value_iteration(mdp, max_iterations=3)
