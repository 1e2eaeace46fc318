"""Small envs whose episodes are known exactly, for the tests of episodes, batches and faults."""

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class CountingEnv(gym.Env):
    """Reward 1 each step; the observation is the step index; terminates after ``length`` steps (or a time limit cuts it)."""

    def __init__(self, length: int = 4, reward: float = 1.0):
        super().__init__()
        self.length, self.reward = length, reward
        self.observation_space = spaces.Box(0, 1000, shape=(1,))
        self.action_space = spaces.Discrete(2)
        self.step_index = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.step_index = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.step_index += 1
        terminated = self.step_index >= self.length
        return np.array([self.step_index], dtype=np.float32), self.reward, terminated, False, {}


class RandomLengthEnv(CountingEnv):
    """Episodes of random length 1..10, to check that quotas do not favour short episodes."""

    def reset(self, *, seed=None, options=None):
        observation, info = super().reset(seed=seed)
        self.length = int(self.np_random.integers(1, 11))
        return observation, info


class ImageEnv(CountingEnv):
    """CountingEnv whose observation is a 36x36 uint8 image filled with the step index."""

    def __init__(self, length: int = 4):
        super().__init__(length)
        self.observation_space = spaces.Box(0, 255, shape=(36, 36, 1), dtype=np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.full((36, 36, 1), self.step_index % 256, dtype=np.uint8), {}

    def step(self, action):
        _, reward, terminated, truncated, info = super().step(action)
        return np.full((36, 36, 1), self.step_index % 256, dtype=np.uint8), reward, terminated, truncated, info
