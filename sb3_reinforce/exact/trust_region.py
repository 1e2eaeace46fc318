"""
Exact trust-region quantities (Lecture 3c, section 3): the performance difference lemma (Lemma 1),
the surrogate objective ``L`` of section 3.1 and PPO's clipped objective of section 3.2.
With a finite horizon, occupancies and advantages are time-indexed, see :meth:`PolicyEvaluation.stages`.
"""

import numpy as np

from sb3_reinforce.exact.checks import check_positive_float, float_array
from sb3_reinforce.exact.mdp import TabularMDP


def ppo_clip_term(ratio: np.ndarray | float, advantage: np.ndarray | float, clip_range: float = 0.2) -> np.ndarray:
    """
    One term of PPO's clipped objective, ``min(r A, clip(r, 1 - eps, 1 + eps) A)`` (elementwise, broadcasting),
    as drawn in the lecture's Figure 1.

    :param ratio: The policy ratio ``r = pi_new(a|s) / pi_old(a|s) >= 0``.
    :param advantage: The advantage ``A^{pi_old}(s, a)``.
    :param clip_range: The clipping parameter ``eps > 0``.
    :return: The clipped term, with the broadcast shape of ``ratio`` and ``advantage``.
    """
    check_positive_float("clip_range", clip_range)
    ratio = float_array(ratio, "ratio")
    if not np.all(np.isfinite(ratio)) or np.any(ratio < 0.0):
        raise ValueError("ratio must be finite and non-negative (a ratio of probabilities)")
    advantage = float_array(advantage, "advantage")
    if not np.all(np.isfinite(advantage)):
        raise ValueError("advantage must be finite")
    return np.minimum(ratio * advantage, np.clip(ratio, 1.0 - clip_range, 1.0 + clip_range) * advantage)


def probability_ratio(mdp: TabularMDP, pi_old: np.ndarray, pi_new: np.ndarray) -> np.ndarray:
    """
    :param mdp: The MDP.
    :param pi_old: The old policy table, shape ``(S, A)``.
    :param pi_new: The new policy table, shape ``(S, A)``.
    :return: ``r(a|s) = pi_new(a|s) / pi_old(a|s)``, set to 0 where ``pi_old(a|s) = 0``
        (such pairs have zero occupancy under ``pi_old``, so they never count in an expectation under it).
    """
    pi_old = mdp.check_policy(pi_old, "pi_old")
    pi_new = mdp.check_policy(pi_new, "pi_new")
    return np.divide(pi_new, pi_old, out=np.zeros_like(pi_new), where=pi_old > 0.0)


def performance_difference(mdp: TabularMDP, pi: np.ndarray, pi_new: np.ndarray) -> float:
    """
    The right-hand side of the performance difference lemma (Lemma 1), ``E_{(s,a) ~ d^{pi_new}}[A^pi(s, a)]``,
    which equals ``J(pi_new) - J(pi)``. Finite horizon: ``sum_h gamma^h E_{d_h^{pi_new}}[A_h^pi]``.

    :param mdp: The MDP.
    :param pi: The reference policy table, shape ``(S, A)``.
    :param pi_new: The other policy table, shape ``(S, A)``.
    :return: ``E_{d^{pi_new}}[A^pi]``.
    """
    advantages = mdp.evaluate(pi).stages().A
    occupancy_new = mdp.evaluate(pi_new).stages().occupancy
    return float((occupancy_new * advantages).sum())


def surrogate_objective(mdp: TabularMDP, pi_old: np.ndarray, pi_new: np.ndarray) -> float:
    """
    The surrogate ``L = E_{(s,a) ~ d^{pi_old}}[pi_new(a|s) / pi_old(a|s) A^{pi_old}(s, a)]`` of section 3.1,
    the first-order approximation of ``J(pi_new) - J(pi_old)``.

    :param mdp: The MDP.
    :param pi_old: The policy the data would come from, shape ``(S, A)``.
    :param pi_new: The candidate policy, shape ``(S, A)``.
    :return: ``L``.
    """
    ratio = probability_ratio(mdp, pi_old, pi_new)
    stages = mdp.evaluate(pi_old).stages()
    return float((stages.occupancy * ratio * stages.A).sum())


def clipped_objective(mdp: TabularMDP, pi_old: np.ndarray, pi_new: np.ndarray, clip_range: float = 0.2) -> float:
    """
    PPO's clipped objective of section 3.2, computed exactly:
    ``E_{(s,a) ~ d^{pi_old}}[min(r A^{pi_old}, clip(r, 1 - eps, 1 + eps) A^{pi_old})]`` with ``r = pi_new / pi_old``.
    Termwise at most the surrogate ``L``, and equal to it while every ratio stays within ``[1 - eps, 1 + eps]``.

    :param mdp: The MDP.
    :param pi_old: The policy the data would come from, shape ``(S, A)``.
    :param pi_new: The candidate policy, shape ``(S, A)``.
    :param clip_range: The clipping parameter ``eps > 0``.
    :return: The clipped objective.
    """
    ratio = probability_ratio(mdp, pi_old, pi_new)
    stages = mdp.evaluate(pi_old).stages()
    return float((stages.occupancy * ppo_clip_term(ratio, stages.A, clip_range)).sum())
