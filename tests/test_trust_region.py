import numpy as np
import pytest

from sb3_reinforce.exact import (
    TabularMDP,
    clipped_objective,
    performance_difference,
    policy_gradient,
    ppo_clip_term,
    softmax_policy,
    surrogate_objective,
)

MDPS = {
    "infinite": dict(gamma=0.9, horizon=None),
    "finite": dict(gamma=0.9, horizon=6),
    "finite-undiscounted": dict(gamma=1.0, horizon=6),
}


@pytest.fixture(params=list(MDPS), name="mdp")
def fixture_mdp(request: pytest.FixtureRequest) -> TabularMDP:
    return TabularMDP.random(6, 3, seed=0, **MDPS[request.param])


def random_logits(mdp: TabularMDP, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((mdp.n_states, mdp.n_actions))


def test_performance_difference_lemma(mdp: TabularMDP) -> None:
    for seed in range(5):
        pi, pi_new = softmax_policy(random_logits(mdp, seed)), softmax_policy(3 * random_logits(mdp, seed + 10))
        improvement = mdp.evaluate(pi_new).J - mdp.evaluate(pi).J
        assert abs(improvement) > 1e-2
        assert performance_difference(mdp, pi, pi_new) == pytest.approx(improvement, rel=0.0, abs=1e-13)
    # Also for deterministic policies, and with the roles swapped
    greedy = np.eye(mdp.n_actions)[np.arange(mdp.n_states) % mdp.n_actions]
    assert performance_difference(mdp, greedy, pi) == pytest.approx(-performance_difference(mdp, pi, greedy), abs=1e-13)


def objectives_along(mdp: TabularMDP, theta: np.ndarray, direction: np.ndarray, step: float) -> tuple[float, float, float]:
    """True improvement, surrogate L and clipped objective at pi_new = softmax(theta + step * direction)."""
    pi_old, pi_new = softmax_policy(theta), softmax_policy(theta + step * direction)
    improvement = mdp.evaluate(pi_new).J - mdp.evaluate(pi_old).J
    return improvement, surrogate_objective(mdp, pi_old, pi_new), clipped_objective(mdp, pi_old, pi_new, clip_range=0.2)


def test_surrogates_agree_to_first_order(mdp: TabularMDP) -> None:
    theta, direction = random_logits(mdp, seed=1), random_logits(mdp, seed=2)
    assert objectives_along(mdp, theta, direction, 0.0) == (0.0, pytest.approx(0.0, abs=1e-14), pytest.approx(0.0, abs=1e-14))
    # Same directional derivative: the exact u . grad J (eq. (4)) against central differences of each objective
    slope = float((policy_gradient(mdp, theta) * direction).sum())
    step = 1e-5
    forward, backward = objectives_along(mdp, theta, direction, step), objectives_along(mdp, theta, direction, -step)
    for value_forward, value_backward in zip(forward, backward, strict=True):
        assert (value_forward - value_backward) / (2 * step) == pytest.approx(slope, rel=1e-7)


def test_surrogate_gap_is_second_order(mdp: TabularMDP) -> None:
    theta, direction = random_logits(mdp, seed=1), random_logits(mdp, seed=2)
    steps = np.array([0.04, 0.02, 0.01, 0.005])
    gaps = np.array([abs(np.subtract(*objectives_along(mdp, theta, direction, step)[:2])) for step in steps])
    # Halving the step divides the gap |J(pi_new) - J(pi_old) - L| by ~4: O(step^2) (the ratio tends to 4)
    np.testing.assert_allclose(gaps[:-1] / gaps[1:], 4.0, rtol=0.1)
    # ... while the improvement itself is first order, so the relative error of L vanishes with the step
    improvements = np.array([objectives_along(mdp, theta, direction, step)[0] for step in steps])
    assert np.all(np.diff(gaps / np.abs(improvements)) < 0.0)
    # Far from pi_old the surrogate is a poor model of the improvement
    improvement, surrogate, _ = objectives_along(mdp, theta, direction, 2.0)
    assert abs(improvement - surrogate) > 100 * gaps[0]


def test_clipped_objective_is_termwise_pessimistic(mdp: TabularMDP) -> None:
    theta, direction = random_logits(mdp, seed=3), random_logits(mdp, seed=4)
    # Small steps keep every ratio in [1 - eps, 1 + eps]: clipped objective = L exactly
    pi_old, pi_near = softmax_policy(theta), softmax_policy(theta + 0.02 * direction)
    assert np.all(np.abs(pi_near / pi_old - 1.0) < 0.2)
    assert clipped_objective(mdp, pi_old, pi_near) == pytest.approx(surrogate_objective(mdp, pi_old, pi_near), abs=1e-15)
    # Larger steps clip some terms: min(r A, clip(r) A) <= r A termwise, hence clipped <= L, strictly here
    for step in (0.5, 1.0, 3.0):
        _, surrogate, clipped = objectives_along(mdp, theta, direction, step)
        assert clipped < surrogate


def test_clipped_objective_ignores_zero_probability_actions(mdp: TabularMDP) -> None:
    # A deterministic pi_old never takes the other actions: they have no occupancy, hence no ratio is needed there
    pi_old = np.eye(mdp.n_actions)[np.zeros(mdp.n_states, dtype=int)]
    pi_new = softmax_policy(random_logits(mdp, seed=5))
    surrogate = surrogate_objective(mdp, pi_old, pi_new)
    stages = mdp.evaluate(pi_old).stages()
    assert surrogate == pytest.approx((stages.occupancy[..., 0] * pi_new[:, 0] * stages.A[..., 0]).sum(), abs=1e-14)
    assert np.isfinite(clipped_objective(mdp, pi_old, pi_new))


def test_ppo_clip_term_figure_1() -> None:
    ratios = np.linspace(0.0, 2.0, 21)
    # A > 0: r A up to 1 + eps, then flat at (1 + eps) A
    np.testing.assert_allclose(ppo_clip_term(ratios, 2.0, clip_range=0.2), 2.0 * np.minimum(ratios, 1.2))
    # A < 0: flat at (1 - eps) A below 1 - eps, then r A
    np.testing.assert_allclose(ppo_clip_term(ratios, -2.0, clip_range=0.2), -2.0 * np.maximum(ratios, 0.8))
    assert ppo_clip_term(ratios, 0.0).tolist() == [0.0] * 21
    assert ppo_clip_term(np.ones((2, 3)), np.ones(3)).shape == (2, 3)


@pytest.mark.parametrize("clip_range", [0.0, -0.1, float("nan")])
def test_invalid_clip_range(clip_range: float) -> None:
    mdp = TabularMDP.random(3, 2, gamma=0.9, seed=0)
    pi = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="clip_range must be a positive float"):
        ppo_clip_term(1.0, 1.0, clip_range)
    with pytest.raises(ValueError, match="clip_range must be a positive float"):
        clipped_objective(mdp, pi, pi, clip_range)


def test_invalid_policies() -> None:
    mdp = TabularMDP.random(3, 2, gamma=0.9, seed=0)
    pi, wrong_shape, not_normalised = np.full((3, 2), 0.5), np.full((2, 3), 0.5), np.full((3, 2), 0.4)
    with pytest.raises(ValueError, match="ratio must be finite and non-negative"):
        ppo_clip_term(-0.5, 1.0)
    for function in (performance_difference, surrogate_objective, clipped_objective):
        with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
            function(mdp, pi, wrong_shape)
        with pytest.raises(ValueError, match="sum to 1"):
            function(mdp, not_normalised, pi)
