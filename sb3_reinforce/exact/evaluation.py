"""Exact evaluation of a stationary policy in a known tabular MDP: J, V, Q, the advantage and the occupancy measure."""

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sb3_reinforce.exact.bellman import KnownModel, action_values, backward_induction

# Condition number of I - gamma * P_pi above which the linear solves lose more than about 1e-6 of relative precision
ILL_CONDITIONED = 1e-6 / np.finfo(float).eps


class Stages(NamedTuple):
    """
    The time-indexed quantities of a policy, stacked over stages, such that an expectation under the occupancy
    measure with time-indexed values reads ``(occupancy * f(Q, A)).sum()``.
    With a finite horizon the stages are the timesteps ``h = 0, ..., H - 1``; with an infinite horizon the values
    are stationary and there is a single stage holding the whole occupancy ``d``.

    :param occupancy: Discounted occupancy of each stage, ``gamma^h d_h(s, a)``, shape ``(n_stages, S, A)``.
    :param Q: Action values of each stage, shape ``(n_stages, S, A)``.
    :param A: Advantages of each stage, shape ``(n_stages, S, A)``.
    """

    occupancy: np.ndarray
    Q: np.ndarray
    A: np.ndarray


@dataclass(frozen=True)
class PolicyEvaluation:
    """
    The exact quantities of a stationary policy ``pi`` in a :class:`~sb3_reinforce.exact.mdp.TabularMDP`.

    With a finite horizon H the values depend on the timestep h (H - h transitions are left):
    ``V``, ``Q`` and ``A`` are those at h = 0 and the ``*_h`` fields hold all timesteps.

    :param gamma: The discount factor of the MDP.
    :param J: The objective ``J(pi) = E_{s_0 ~ d_0}[V(s_0)]``.
    :param V: State values, shape ``(S,)``.
    :param Q: Action values, shape ``(S, A)``.
    :param A: Advantages ``A(s, a) = Q(s, a) - V(s)``, shape ``(S, A)``.
    :param d: The unnormalised discounted occupancy ``d(s, a) = sum_h gamma^h Pr(s_h = s, a_h = a)``, shape ``(S, A)``.
    :param V_h: Finite horizon only (else ``None``): ``V_h[h]`` for h = 0, ..., H, shape ``(H + 1, S)``; ``V_h[H] = 0``.
    :param Q_h: Finite horizon only: ``Q_h[h]`` for h = 0, ..., H - 1, shape ``(H, S, A)``.
    :param A_h: Finite horizon only: ``A_h[h] = Q_h[h] - V_h[h]``, shape ``(H, S, A)``.
    :param d_h: Finite horizon only: the undiscounted ``d_h(s, a) = Pr(s_h = s, a_h = a)``, shape ``(H, S, A)``.
    """

    gamma: float
    J: float
    V: np.ndarray
    Q: np.ndarray
    A: np.ndarray
    d: np.ndarray
    V_h: np.ndarray | None = None
    Q_h: np.ndarray | None = None
    A_h: np.ndarray | None = None
    d_h: np.ndarray | None = None

    def stages(self) -> Stages:
        """
        :return: The occupancies, action values and advantages stacked over stages, see :class:`Stages`.
        """
        if self.d_h is None or self.Q_h is None or self.A_h is None:
            return Stages(self.d[np.newaxis], self.Q[np.newaxis], self.A[np.newaxis])
        discounts = self.gamma ** np.arange(len(self.d_h))
        return Stages(discounts[:, np.newaxis, np.newaxis] * self.d_h, self.Q_h, self.A_h)


def policy_transitions(mdp: KnownModel, pi: np.ndarray) -> np.ndarray:
    """
    :param mdp: The MDP.
    :param pi: The policy table, shape ``(S, A)``.
    :return: ``P_pi[s, s'] = sum_a pi(a|s) P(s'|s, a)``, shape ``(S, S)``.
    """
    return np.einsum("sa,sat->st", pi, mdp.transitions)


def policy_evaluation(mdp: KnownModel, pi: np.ndarray) -> PolicyEvaluation:
    """
    Evaluate a stationary policy exactly: linear solves for the infinite horizon,
    backward (values) and forward (occupancies) recursions over the H timesteps for a finite horizon.

    :param mdp: The MDP.
    :param pi: The policy table ``pi[s, a] = pi(a|s)``, shape ``(S, A)``.
    :return: The exact quantities.
    """
    pi = mdp.check_policy(pi)
    if mdp.horizon is None:
        return _evaluate_infinite_horizon(mdp, pi)
    return _evaluate_finite_horizon(mdp, pi, mdp.horizon)


def _evaluate_infinite_horizon(mdp: KnownModel, pi: np.ndarray) -> PolicyEvaluation:
    # V = r_pi + gamma P_pi V  and  mu = d_0 + gamma P_pi^T mu, mu(s) = sum_h gamma^h Pr(s_h = s)
    system = np.eye(mdp.n_states) - mdp.gamma * policy_transitions(mdp, pi)
    condition = np.linalg.cond(system)
    if condition > ILL_CONDITIONED:
        warnings.warn(
            f"gamma={mdp.gamma!r} is so close to 1 for this policy that I - gamma * P_pi has condition number "
            f"{condition:.3g}: J, V and d may be off by up to about {condition * np.finfo(float).eps:.1g} in relative "
            "terms. Use a smaller gamma or a finite horizon.",
            RuntimeWarning,
        )
    values = np.linalg.solve(system, (pi * mdp.rewards).sum(axis=1))
    q_values = action_values(mdp, values)
    state_occupancy = np.linalg.solve(system.T, mdp.initial_distribution)
    return PolicyEvaluation(
        gamma=mdp.gamma,
        J=float(mdp.initial_distribution @ values),
        V=values,
        Q=q_values,
        A=q_values - values[:, np.newaxis],
        d=state_occupancy[:, np.newaxis] * pi,
    )


def _evaluate_finite_horizon(mdp: KnownModel, pi: np.ndarray, horizon: int) -> PolicyEvaluation:
    values, q_values, _ = backward_induction(mdp, horizon, lambda _: pi)
    # Forward: Pr(s_{h+1} = s') = sum_s Pr(s_h = s) P_pi(s'|s), the missing mass being terminated episodes
    transitions_pi = policy_transitions(mdp, pi)
    state_distributions = np.zeros((horizon, mdp.n_states))
    state_distributions[0] = mdp.initial_distribution
    for h in range(1, horizon):
        state_distributions[h] = state_distributions[h - 1] @ transitions_pi
    occupancies = state_distributions[:, :, np.newaxis] * pi
    discounts = mdp.gamma ** np.arange(horizon)
    advantages = q_values - values[:-1, :, np.newaxis]
    return PolicyEvaluation(
        gamma=mdp.gamma,
        J=float(mdp.initial_distribution @ values[0]),
        V=values[0],
        Q=q_values[0],
        A=advantages[0],
        d=np.einsum("h,hsa->sa", discounts, occupancies),
        V_h=values,
        Q_h=q_values,
        A_h=advantages,
        d_h=occupancies,
    )
