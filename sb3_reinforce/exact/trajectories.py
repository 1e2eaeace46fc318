"""Enumeration of all trajectories of a finite-horizon tabular MDP with their probabilities ``P^pi(tau)`` (eq. (2))."""

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from sb3_reinforce.exact.mdp import TabularMDP

# Enumeration is exponential in the horizon: refuse MDPs with more potential trajectories than this.
MAX_TRAJECTORIES = 1_000_000


class Trajectory(NamedTuple):
    """
    One trajectory ``tau = (s_0, a_0, r_0, ..., s_{L-1}, a_{L-1}, r_{L-1})`` of length L <= H.
    L < H means that the episode terminated after its last transition. The last state ``s_L`` is summed out:
    neither ``R(tau)`` nor ``sum_h grad log pi(a_h|s_h)`` depends on it.

    :param probability: ``P^pi(tau)``.
    :param discounted_return: ``R(tau) = sum_h gamma^h R(s_h, a_h)``.
    :param states: ``(s_0, ..., s_{L-1})``.
    :param actions: ``(a_0, ..., a_{L-1})``.
    """

    probability: float
    discounted_return: float
    states: tuple[int, ...]
    actions: tuple[int, ...]


def enumerate_trajectories(mdp: TabularMDP, pi: np.ndarray) -> Iterator[Trajectory]:
    """
    Enumerate every trajectory of non-zero probability under a stationary policy, for tiny finite-horizon MDPs.
    Their probabilities sum to 1.

    :param mdp: The MDP, with a finite horizon.
    :param pi: The policy table ``pi[s, a] = pi(a|s)``, shape ``(S, A)``.
    :return: An iterator over the trajectories.
    """
    pi = mdp.check_policy(pi)
    if mdp.horizon is None:
        raise ValueError("enumerating trajectories (eq. (2)) needs a finite horizon, got horizon=None")
    n_trajectories_bound = mdp.n_states * float(mdp.n_states * mdp.n_actions) ** mdp.horizon
    if n_trajectories_bound > MAX_TRAJECTORIES:
        raise ValueError(
            f"enumeration is for tiny MDPs: S * (S * A)^H = {n_trajectories_bound:.3g} exceeds {MAX_TRAJECTORIES}"
        )
    for state in np.flatnonzero(mdp.initial_distribution):
        yield from _extend(mdp, pi, Trajectory(mdp.initial_distribution[state], 0.0, (), ()), int(state))


def _extend(mdp: TabularMDP, pi: np.ndarray, prefix: Trajectory, state: int) -> Iterator[Trajectory]:
    """
    Enumerate the trajectories that continue ``prefix`` from ``state``.

    :param mdp: The MDP, with a finite horizon.
    :param pi: The policy table.
    :param prefix: The trajectory so far, its probability including that of reaching ``state``.
    :param state: The current state ``s_h``, with ``h = len(prefix.states)``.
    :return: An iterator over the complete trajectories.
    """
    h = len(prefix.states)
    for action in np.flatnonzero(pi[state]):
        trajectory = Trajectory(
            probability=prefix.probability * pi[state, action],
            discounted_return=prefix.discounted_return + mdp.gamma**h * mdp.rewards[state, action],
            states=(*prefix.states, state),
            actions=(*prefix.actions, int(action)),
        )
        if h + 1 == mdp.horizon:
            yield trajectory
            continue
        next_state_probabilities = mdp.transitions[state, action]
        termination_probability = 1.0 - next_state_probabilities.sum()
        if termination_probability > 0.0:
            yield trajectory._replace(probability=trajectory.probability * termination_probability)
        for next_state in np.flatnonzero(next_state_probabilities):
            continued = trajectory._replace(probability=trajectory.probability * next_state_probabilities[next_state])
            yield from _extend(mdp, pi, continued, int(next_state))
