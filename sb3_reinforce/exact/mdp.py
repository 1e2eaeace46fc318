"""A known tabular MDP ``M = (S, A, P, R, gamma, d_0)``, optionally with a finite horizon (Lecture 3c, section 1)."""

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_reinforce.exact.checks import check_int, float_array
from sb3_reinforce.exact.evaluation import PolicyEvaluation, policy_evaluation

# Absolute tolerance on probabilities summing to one (or to at most one for sub-stochastic transition rows).
# Loose enough for the float32 softmax outputs of a policy network.
PROBABILITY_TOLERANCE = 1e-6


def check_probability_table(table: np.ndarray, shape: tuple[int, ...], name: str, exact_sum: bool = True) -> np.ndarray:
    """
    Validate a table of probabilities whose last axis is a (sub-)distribution.

    :param table: The table to check.
    :param shape: The required shape.
    :param name: How to call the table in error messages.
    :param exact_sum: Whether each distribution must sum to 1 (``True``) or to at most 1 (``False``).
    :return: The table as a float64 array.
    """
    array = float_array(table, name)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0.0):
        raise ValueError(f"{name} must contain finite, non-negative probabilities")
    sums = array.sum(axis=-1)
    if exact_sum and not np.allclose(sums, 1.0, rtol=0.0, atol=PROBABILITY_TOLERANCE):
        raise ValueError(f"each distribution in {name} must sum to 1, got sums in [{sums.min()}, {sums.max()}]")
    if not exact_sum and np.any(sums > 1.0 + PROBABILITY_TOLERANCE):
        raise ValueError(f"each row of {name} must sum to at most 1 (the rest is termination), got a sum of {sums.max()}")
    return array


def check_discrete_space(space: spaces.Space, name: str) -> int:
    """
    Check that a space is ``Discrete(n)`` starting at 0, as a tabular MDP needs.

    :param space: The space to check.
    :param name: How to call the space in error messages.
    :return: Its number of elements ``n``.
    """
    if not isinstance(space, spaces.Discrete) or int(space.start) != 0:
        raise TypeError(f"the {name} space must be Discrete(n) with start=0, got {space}")
    return int(space.n)


class TabularMDP:
    """
    A known tabular MDP ``M = (S, A, P, R, gamma, d_0)`` as in the lecture: the planning setting.

    Episodes may end in two ways: by termination, the probability mass missing from a row of ``transitions``
    (``1 - sum_s' P(s'|s, a)``), and, with a finite ``horizon`` H, after H transitions, the case of eq. (2)/(3).

    :param transitions: ``P[s, a, s']``, shape ``(S, A, S)``; each row ``P[s, a]`` sums to at most 1.
    :param rewards: The expected immediate reward ``R(s, a)``, shape ``(S, A)``.
    :param gamma: Discount factor in [0, 1]; ``gamma=1`` needs a finite ``horizon``.
    :param initial_distribution: The initial state distribution ``d_0``, shape ``(S,)``.
    :param horizon: ``None`` for the infinite-horizon discounted case, or a positive int H:
        every episode ends after at most H transitions.
    """

    def __init__(
        self,
        transitions: np.ndarray,
        rewards: np.ndarray,
        gamma: float,
        initial_distribution: np.ndarray,
        horizon: int | None = None,
    ) -> None:
        # Copies, made read-only below: the MDP owns its arrays
        transitions = float_array(transitions, "transitions")
        if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
            raise ValueError(f"transitions must have shape (S, A, S), got {transitions.shape}")
        n_states, n_actions = transitions.shape[:2]
        if n_states == 0 or n_actions == 0:
            raise ValueError(f"an MDP needs at least one state and one action, got transitions of shape {transitions.shape}")
        self.transitions = check_probability_table(transitions, transitions.shape, "transitions", exact_sum=False)
        self.rewards = float_array(rewards, "rewards")
        if self.rewards.shape != (n_states, n_actions) or not np.all(np.isfinite(self.rewards)):
            raise ValueError(
                f"rewards must be a finite array of shape (S, A) = {(n_states, n_actions)}, got shape {self.rewards.shape}"
            )
        self.initial_distribution = check_probability_table(
            float_array(initial_distribution, "initial_distribution"), (n_states,), "initial_distribution"
        )
        self.horizon = self._check_horizon(horizon)
        self.gamma = self._check_gamma(gamma, self.horizon)
        for array in (self.transitions, self.rewards, self.initial_distribution):
            array.flags.writeable = False

    @staticmethod
    def _check_horizon(horizon: int | None) -> int | None:
        if horizon is None:
            return None
        if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer):
            raise TypeError(f"horizon must be None (infinite horizon) or a positive int, got {horizon!r}")
        if horizon < 1:
            raise ValueError(f"horizon must be None (infinite horizon) or a positive int, got {horizon}")
        return int(horizon)

    @staticmethod
    def _check_gamma(gamma: float, horizon: int | None) -> float:
        if isinstance(gamma, bool) or not isinstance(gamma, float | int | np.floating | np.integer):
            raise TypeError(f"gamma must be a float in [0, 1], got {gamma!r}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if gamma == 1.0 and horizon is None:
            raise ValueError("gamma=1 is only allowed with a finite horizon; use gamma in [0, 1) for horizon=None")
        return float(gamma)

    @property
    def n_states(self) -> int:
        """The number of states S."""
        return self.transitions.shape[0]

    @property
    def n_actions(self) -> int:
        """The number of actions A."""
        return self.transitions.shape[1]

    def __repr__(self) -> str:
        return f"TabularMDP(n_states={self.n_states}, n_actions={self.n_actions}, gamma={self.gamma}, horizon={self.horizon})"

    def check_policy(self, pi: np.ndarray, name: str = "pi") -> np.ndarray:
        """
        Validate a stationary policy table ``pi[s, a] = pi(a|s)`` for this MDP.

        :param pi: The policy, shape ``(S, A)``, each row a distribution over actions.
        :param name: How to call the policy in error messages.
        :return: The policy as a float64 array.
        """
        return check_probability_table(pi, (self.n_states, self.n_actions), name)

    def evaluate(self, pi: np.ndarray) -> PolicyEvaluation:
        """
        Evaluate a stationary policy exactly: J, V, Q, the advantage A and the occupancy d.

        :param pi: The policy table ``pi[s, a] = pi(a|s)``, shape ``(S, A)``.
        :return: The exact quantities, see :class:`~sb3_reinforce.exact.evaluation.PolicyEvaluation`.
        """
        return policy_evaluation(self, pi)

    @classmethod
    def random(
        cls,
        n_states: int,
        n_actions: int,
        gamma: float,
        horizon: int | None = None,
        termination_probability: float = 0.1,
        seed: int | None = None,
    ) -> "TabularMDP":
        """
        A random MDP for experiments and tests: Dirichlet transition rows scaled to leave
        ``termination_probability`` of termination, standard normal rewards and a Dirichlet ``d_0``.

        :param n_states: Number of states S.
        :param n_actions: Number of actions A.
        :param gamma: Discount factor.
        :param horizon: ``None`` (infinite horizon) or the finite horizon H.
        :param termination_probability: Probability in [0, 1] that each transition ends the episode.
        :param seed: Seed of the random generator.
        :return: The random MDP.
        """
        check_int("n_states", n_states, 1)
        check_int("n_actions", n_actions, 1)
        if seed is not None:
            check_int("seed", seed, 0)
        if not 0.0 <= termination_probability <= 1.0:
            raise ValueError(f"termination_probability must be in [0, 1], got {termination_probability}")
        rng = np.random.default_rng(seed)
        transitions = (1.0 - termination_probability) * rng.dirichlet(np.ones(n_states), size=(n_states, n_actions))
        rewards = rng.standard_normal((n_states, n_actions))
        initial_distribution = rng.dirichlet(np.ones(n_states))
        return cls(transitions, rewards, gamma, initial_distribution, horizon)

    @classmethod
    def from_env(cls, env: gym.Env, gamma: float, horizon: int | None = None, n_resets: int = 1000) -> "TabularMDP":
        """
        Read the model of a gymnasium toy-text environment (FrozenLake-v1, CliffWalking-v1, Taxi-v4, ...)
        from ``env.unwrapped.P``, a dict ``s -> a -> [(probability, next_state, reward, terminated), ...]``.

        Terminated transitions become termination (their probability mass is removed from ``P[s, a]``)
        and ``R(s, a) = sum p * r`` over all outcomes, terminated ones included.
        Wrappers are ignored: to model a ``TimeLimit`` exactly, pass ``horizon=env.spec.max_episode_steps``
        (the episode then ends after that many transitions, eq. (2)/(3)).

        :param env: The environment, wrapped or not.
        :param gamma: Discount factor.
        :param horizon: ``None`` (infinite horizon) or the finite horizon H.
        :param n_resets: Only used when the environment has no ``initial_state_distrib``:
            ``d_0`` is then the empirical distribution of this many resets seeded ``0, ..., n_resets - 1``.
        :return: The MDP.
        """
        check_int("n_resets", n_resets, 1)
        unwrapped = env.unwrapped
        model = getattr(unwrapped, "P", None)
        if not isinstance(model, dict):
            raise TypeError(f"env must expose its model as env.unwrapped.P (a gymnasium toy-text env), got {unwrapped}")
        n_states = check_discrete_space(env.observation_space, "observation")
        n_actions = check_discrete_space(env.action_space, "action")
        transitions = np.zeros((n_states, n_actions, n_states))
        rewards = np.zeros((n_states, n_actions))
        for state, outcomes_by_action in model.items():
            for action, outcomes in outcomes_by_action.items():
                for probability, next_state, reward, terminated in outcomes:
                    rewards[state, action] += probability * reward
                    if not terminated:
                        transitions[state, action, next_state] += probability
        initial_distribution = getattr(unwrapped, "initial_state_distrib", None)
        if initial_distribution is None:
            initial_distribution = _empirical_initial_distribution(env, n_states, n_resets)
        return cls(transitions, rewards, gamma, initial_distribution, horizon)


def _empirical_initial_distribution(env: gym.Env, n_states: int, n_resets: int) -> np.ndarray:
    """
    The empirical distribution of the first observation over ``n_resets`` seeded resets.

    :param env: The environment.
    :param n_states: Number of states.
    :param n_resets: Number of resets, seeded ``0, ..., n_resets - 1``.
    :return: The estimated initial state distribution.
    """
    counts = np.zeros(n_states)
    for seed in range(n_resets):
        observation, _ = env.reset(seed=seed)
        counts[int(observation)] += 1
    return counts / n_resets
