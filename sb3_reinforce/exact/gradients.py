"""
Exact policy gradients of a tabular softmax policy ``pi(a|s) = softmax(theta[s])_a``, two ways:
the action-value expression eq. (4) and the enumeration of all trajectories eq. (2).
"""

import numpy as np

from sb3_reinforce.exact.checks import float_array
from sb3_reinforce.exact.evaluation import PolicyEvaluation
from sb3_reinforce.exact.mdp import TabularMDP, check_probability_table
from sb3_reinforce.exact.trajectories import enumerate_trajectories


def check_logits(mdp: TabularMDP, theta: np.ndarray) -> np.ndarray:
    """
    Validate the parameters of a tabular softmax policy for this MDP.

    :param mdp: The MDP.
    :param theta: The logits, shape ``(S, A)``.
    :return: The logits as a float64 array.
    """
    theta = float_array(theta, "theta")
    if theta.shape != (mdp.n_states, mdp.n_actions) or not np.all(np.isfinite(theta)):
        raise ValueError(f"theta must be a finite array of shape (S, A) = {(mdp.n_states, mdp.n_actions)}, got {theta.shape}")
    return theta


def softmax_policy(theta: np.ndarray) -> np.ndarray:
    """
    :param theta: The logits, shape ``(S, A)``.
    :return: The policy table ``pi(a|s) = exp(theta[s, a]) / sum_b exp(theta[s, b])``, shape ``(S, A)``.
    """
    theta = float_array(theta, "theta")
    if theta.ndim != 2 or not np.all(np.isfinite(theta)):
        raise ValueError(f"theta must be a finite array of shape (S, A), got shape {theta.shape}")
    exponentials = np.exp(theta - theta.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def softmax_score_sum(pi: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """
    ``sum_{s, a} weights(s, a) grad_theta log pi(a|s)`` for the tabular softmax policy,
    using ``d log pi(a|s) / d theta[s, b] = 1[a = b] - pi(b|s)``.

    :param pi: The softmax policy table, shape ``(S, A)``.
    :param weights: The weight of each score, shape ``(S, A)``.
    :return: The weighted sum of scores, shape ``(S, A)`` like theta.
    """
    return weights - pi * weights.sum(axis=1, keepdims=True)


def action_value_policy_gradient(pi: np.ndarray, evaluation: PolicyEvaluation) -> np.ndarray:
    """
    Eq. (4), ``grad J = E_{(s,a) ~ d^pi}[grad log pi(a|s) Q^pi(s, a)]``, given the exact evaluation of ``pi``.
    With a finite horizon, the values are time-indexed: ``sum_h gamma^h E_{d_h^pi}[grad log pi(a|s) Q_h^pi(s, a)]``.

    :param pi: The softmax policy table, shape ``(S, A)``.
    :param evaluation: ``mdp.evaluate(pi)``.
    :return: The gradient with respect to the logits, shape ``(S, A)``.
    """
    if not isinstance(evaluation, PolicyEvaluation):
        raise TypeError(f"evaluation must be the PolicyEvaluation of pi (mdp.evaluate(pi)), got {evaluation!r}")
    stages = evaluation.stages()
    pi = check_probability_table(pi, stages.Q.shape[1:], "pi")
    return softmax_score_sum(pi, (stages.occupancy * stages.Q).sum(axis=0))


def policy_gradient(mdp: TabularMDP, theta: np.ndarray) -> np.ndarray:
    """
    The exact gradient of ``J(pi_theta)`` for the tabular softmax policy via eq. (4).

    :param mdp: The MDP (infinite or finite horizon).
    :param theta: The logits, shape ``(S, A)``.
    :return: ``grad_theta J``, shape ``(S, A)``.
    """
    pi = softmax_policy(check_logits(mdp, theta))
    return action_value_policy_gradient(pi, mdp.evaluate(pi))


def trajectory_policy_gradient(mdp: TabularMDP, theta: np.ndarray) -> np.ndarray:
    """
    The exact gradient of ``J(pi_theta)`` for the tabular softmax policy via eq. (2),
    ``grad J = sum_tau R(tau) P^pi(tau) sum_h grad log pi(a_h|s_h)``, enumerating every trajectory.
    Exponential in the horizon: for tiny finite-horizon MDPs only.

    :param mdp: The MDP, with a finite horizon.
    :param theta: The logits, shape ``(S, A)``.
    :return: ``grad_theta J``, shape ``(S, A)``.
    """
    pi = softmax_policy(check_logits(mdp, theta))
    # The score of tau is linear in its visit counts: accumulate sum_tau R(tau) P(tau) * counts(tau) first
    weights = np.zeros_like(pi)
    for trajectory in enumerate_trajectories(mdp, pi):
        np.add.at(weights, (trajectory.states, trajectory.actions), trajectory.probability * trajectory.discounted_return)
    return softmax_score_sum(pi, weights)
