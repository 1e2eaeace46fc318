"""A known tabular MDP as a gymnasium environment, so that learners can sample what the planner solves."""

import gymnasium as gym
import numpy as np

from sb3_reinforce.exact.mdp import TabularMDP


class TabularMDPEnv(gym.Env):
    """
    A gymnasium env that samples a known ``TabularMDP``: ``Discrete`` observations (the state) and actions, reward
    ``R(s, a)``, the missing mass of ``transitions[s, a]`` terminates. The horizon is not applied: wrap the env in
    ``gymnasium.wrappers.TimeLimit(env, mdp.horizon)`` for the finite-horizon case.

    :param mdp: The MDP to sample
    """

    def __init__(self, mdp: TabularMDP):
        super().__init__()
        if not isinstance(mdp, TabularMDP):
            raise TypeError(f"mdp must be a TabularMDP, got {mdp!r}")
        self.mdp = mdp
        self.observation_space = gym.spaces.Discrete(mdp.n_states)
        self.action_space = gym.spaces.Discrete(mdp.n_actions)
        # None until the first reset
        self.state: int | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self.state = self._sample(self.mdp.initial_distribution)
        return self.state, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        if self.state is None:
            raise RuntimeError("TabularMDPEnv: call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an int in [0, {self.mdp.n_actions}), got {action!r}")
        reward = float(self.mdp.rewards[self.state, action])
        probabilities = self.mdp.transitions[self.state, action]
        outcome = self._sample(np.append(probabilities, max(0.0, 1.0 - probabilities.sum())))
        terminated = outcome == self.mdp.n_states
        self.state = self.state if terminated else outcome
        return self.state, reward, terminated, False, {}

    def _sample(self, probabilities: np.ndarray) -> int:
        """
        :param probabilities: A distribution, summing to 1 within the MDP's ``PROBABILITY_TOLERANCE`` (numpy's own
            check is stricter: tables made in float32 would fail it)
        :return: An index drawn from it
        """
        return int(self.np_random.choice(len(probabilities), p=probabilities / probabilities.sum()))
