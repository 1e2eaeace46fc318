"""Planning on a known MDP: value iteration for the optimal values, exact policy-gradient ascent for a softmax policy."""

from dataclasses import dataclass

import numpy as np

from sb3_reinforce.exact.bellman import action_values, backward_induction
from sb3_reinforce.exact.checks import check_int, check_positive_float
from sb3_reinforce.exact.gradients import action_value_policy_gradient, check_logits, softmax_policy
from sb3_reinforce.exact.mdp import TabularMDP


@dataclass(frozen=True)
class OptimalSolution:
    """
    The optimal values of an MDP and a greedy deterministic optimal policy.
    With a finite horizon the optimal policy depends on the timestep: ``V``, ``Q`` and ``policy`` are those at
    h = 0 and the ``*_h`` fields hold all timesteps; ``J`` then bounds the ``J`` of every stationary policy.

    :param J: The optimal objective ``J* = E_{s_0 ~ d_0}[V*(s_0)]``.
    :param V: Optimal state values, shape ``(S,)``.
    :param Q: Optimal action values, shape ``(S, A)``.
    :param policy: A greedy optimal policy as a one-hot table, shape ``(S, A)`` (ties go to the first action).
    :param V_h: Finite horizon only (else ``None``): shape ``(H + 1, S)``, ``V_h[H] = 0``.
    :param Q_h: Finite horizon only: shape ``(H, S, A)``.
    :param policy_h: Finite horizon only: the optimal decision rule of each timestep, shape ``(H, S, A)``.
    """

    J: float
    V: np.ndarray
    Q: np.ndarray
    policy: np.ndarray
    V_h: np.ndarray | None = None
    Q_h: np.ndarray | None = None
    policy_h: np.ndarray | None = None


@dataclass(frozen=True)
class GradientAscentResult:
    """
    The outcome of :func:`policy_gradient_ascent`.

    :param theta: The final logits, shape ``(S, A)``.
    :param pi: The final softmax policy table, shape ``(S, A)``.
    :param J_history: ``J`` before each update and after the last one, shape ``(n_iterations + 1,)``.
    """

    theta: np.ndarray
    pi: np.ndarray
    J_history: np.ndarray


def _greedy(q_values: np.ndarray) -> np.ndarray:
    """
    :param q_values: Action values, shape ``(..., A)``.
    :return: The one-hot greedy policy, ties going to the first action, shape ``(..., A)``.
    """
    return np.eye(q_values.shape[-1])[q_values.argmax(axis=-1)]


def value_iteration(mdp: TabularMDP, tolerance: float = 1e-10, max_iterations: int = 100_000) -> OptimalSolution:
    """
    The optimal values of an MDP: H steps of backward induction for a finite horizon (exact),
    Bellman optimality backups ``V <- max_a Q`` until ``max |V_new - V| <= tolerance`` for the infinite horizon
    (then ``|V - V*| <= gamma * tolerance / (1 - gamma)``).

    :param mdp: The MDP.
    :param tolerance: Stopping threshold on the sup-norm change of ``V`` (infinite horizon only).
    :param max_iterations: Maximum number of backups before giving up with a ``RuntimeError`` (infinite horizon only).
    :return: The optimal values and a greedy optimal policy.
    """
    check_positive_float("tolerance", tolerance)
    check_int("max_iterations", max_iterations, 1)
    if mdp.horizon is not None:
        values, q_values, policies = backward_induction(mdp, mdp.horizon, _greedy)
        return OptimalSolution(
            float(mdp.initial_distribution @ values[0]), values[0], q_values[0], policies[0], values, q_values, policies
        )
    values = np.zeros(mdp.n_states)
    for _ in range(max_iterations):
        q_values = action_values(mdp, values)
        new_values = q_values.max(axis=1)
        converged = np.max(np.abs(new_values - values)) <= tolerance
        values = new_values
        if converged:
            return OptimalSolution(float(mdp.initial_distribution @ values), values, q_values, _greedy(q_values))
    raise RuntimeError(f"value iteration did not reach tolerance={tolerance} within max_iterations={max_iterations}")


def policy_gradient_ascent(
    mdp: TabularMDP,
    learning_rate: float,
    n_iterations: int,
    initial_theta: np.ndarray | None = None,
) -> GradientAscentResult:
    """
    Exact policy-gradient ascent ``theta <- theta + learning_rate * grad J(pi_theta)`` for a tabular softmax policy,
    the gradient computed exactly with eq. (4): vanilla policy gradient in the planning setting.

    :param mdp: The MDP.
    :param learning_rate: The step size ``alpha > 0``.
    :param n_iterations: The number of updates (non-negative).
    :param initial_theta: The initial logits, shape ``(S, A)``; ``None`` for zeros (the uniform policy).
    :return: The final logits and policy and the history of ``J``.
    """
    check_positive_float("learning_rate", learning_rate)
    check_int("n_iterations", n_iterations, 0)
    theta = np.zeros((mdp.n_states, mdp.n_actions)) if initial_theta is None else check_logits(mdp, initial_theta).copy()
    J_history = np.zeros(n_iterations + 1)
    for iteration in range(n_iterations + 1):
        pi = softmax_policy(theta)
        evaluation = mdp.evaluate(pi)
        J_history[iteration] = evaluation.J
        if iteration < n_iterations:
            theta += learning_rate * action_value_policy_gradient(pi, evaluation)
    return GradientAscentResult(theta, pi, J_history)
