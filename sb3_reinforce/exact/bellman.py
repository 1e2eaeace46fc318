"""Bellman backups and backward induction over the arrays of a known tabular MDP (the base of the exact module)."""

from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np


class KnownModel(Protocol):
    """
    What the exact computations read of a known MDP (:class:`~sb3_reinforce.exact.mdp.TabularMDP` provides it).

    :param transitions: ``P[s, a, s']``, shape ``(S, A, S)``; the mass missing from a row is termination.
    :param rewards: ``R(s, a)``, shape ``(S, A)``.
    :param gamma: Discount factor.
    :param initial_distribution: ``d_0``, shape ``(S,)``.
    :param horizon: ``None`` (infinite horizon) or the finite horizon H.
    """

    transitions: np.ndarray
    rewards: np.ndarray
    gamma: float
    initial_distribution: np.ndarray
    horizon: int | None

    @property
    def n_states(self) -> int: ...

    @property
    def n_actions(self) -> int: ...

    def check_policy(self, pi: np.ndarray, name: str = "pi") -> np.ndarray: ...


class BackwardInduction(NamedTuple):
    """
    The time-indexed values of a (possibly time-dependent) decision rule over a finite horizon H.

    :param V_h: ``V_h[h]`` for h = 0, ..., H, shape ``(H + 1, S)``; ``V_h[H] = 0``.
    :param Q_h: ``Q_h[h]`` for h = 0, ..., H - 1, shape ``(H, S, A)``.
    :param policy_h: The decision rule chosen at each timestep, shape ``(H, S, A)``.
    """

    V_h: np.ndarray
    Q_h: np.ndarray
    policy_h: np.ndarray


def action_values(model: KnownModel, next_values: np.ndarray) -> np.ndarray:
    """
    The Bellman backup ``Q(s, a) = R(s, a) + gamma * sum_s' P(s'|s, a) V(s')``.

    :param model: The MDP.
    :param next_values: The values ``V`` of the next states, shape ``(S,)``.
    :return: The action values, shape ``(S, A)``.
    """
    return model.rewards + model.gamma * model.transitions @ next_values


def backward_induction(
    model: KnownModel, horizon: int, decision_rule: Callable[[np.ndarray], np.ndarray]
) -> BackwardInduction:
    """
    ``Q_h = R + gamma P V_{h+1}`` and ``V_h(s) = sum_a pi_h(a|s) Q_h(s, a)`` for h = H - 1, ..., 0, from ``V_H = 0``.

    :param model: The MDP.
    :param horizon: The number of timesteps H.
    :param decision_rule: Maps the action values ``Q_h`` (shape ``(S, A)``) to the policy table ``pi_h`` used at h:
        a fixed policy for policy evaluation, the greedy one for value iteration.
    :return: Values, action values and decision rules of every timestep.
    """
    values = np.zeros((horizon + 1, model.n_states))
    q_values = np.zeros((horizon, model.n_states, model.n_actions))
    policies = np.zeros((horizon, model.n_states, model.n_actions))
    for h in reversed(range(horizon)):
        q_values[h] = action_values(model, values[h + 1])
        policies[h] = decision_rule(q_values[h])
        values[h] = (policies[h] * q_values[h]).sum(axis=1)
    return BackwardInduction(values, q_values, policies)
