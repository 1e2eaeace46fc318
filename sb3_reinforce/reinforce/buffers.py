from typing import ClassVar, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer
from stable_baselines3.common.preprocessing import get_obs_shape
from stable_baselines3.common.type_aliases import TensorDict

# Rows (vectorised steps) the buffer starts with; it doubles as needed, up to its bound
INITIAL_ROWS = 256
# The key under which the observations of a non-Dict space are stored
OBSERVATION_KEY = "observation"


class EpisodeBatch(NamedTuple):
    """
    The complete episodes of one batch, flattened episode after episode (env-major order).

    :param observations: Observation s_h of every step
    :param actions: Action a_h of every step
    :param rewards_to_go: Discounted reward-to-go ``sum_{h' >= h} gamma^(h'-h) r_h'`` of every step
    :param episode_returns: Discounted return R(tau) of the episode each step belongs to
    :param episode_steps: Index h of every step inside its episode (0 for the first step)
    :param n_episodes: Number of complete episodes in the batch
    """

    observations: th.Tensor | TensorDict
    actions: th.Tensor
    rewards_to_go: th.Tensor
    episode_returns: th.Tensor
    episode_steps: th.Tensor
    n_episodes: int


class EpisodeBuffer(BaseBuffer):
    """
    The steps of one batch of complete episodes, for array and ``Dict`` observations.

    Steps are stored one row per vectorised step (arrays of shape ``(rows, n_envs, ...)``), as SB3's rollout buffers
    store them, but:

    - each env has a quota of episodes; the steps an env takes after filling its quota are flagged as outside the
      batch (``in_batch``) and never used: an env cannot idle inside a ``VecEnv``,
    - the buffer starts small and doubles when full, up to ``max_steps`` transitions (rows x n_envs) and ``max_bytes``
      bytes of arrays, so memory follows the episodes actually held; a batch that needs more raises ``ValueError``
      (growing copies the arrays: for a moment the old rows are held beside the new ones, up to 1.5 x ``max_bytes``),
    - observations keep their space's dtype (uint8 images stay uint8),
    - returns are Monte Carlo, computed by ``episode_batch()``: no value bootstrap where an episode ends, except the
      ``bootstrap_values`` the algorithm passes for time-limit truncations.

    :param observation_space: Observation space
    :param action_space: Action space
    :param n_envs: Number of parallel environments
    :param gamma: Discount factor
    :param max_steps: Upper bound on the transitions (rows x n_envs) one batch may hold, at least ``n_envs``
    :param max_bytes: Upper bound on the bytes of the buffer's arrays, at least one vectorised step
    :param device: PyTorch device of the batches
    """

    # The per-step arrays besides the observations, with their dtype: the complete list of what the buffer grows
    STEP_FIELDS: ClassVar[dict[str, type]] = {
        "actions": np.float32,
        "rewards": np.float32,
        "episode_starts": bool,
        "episode_ends": bool,
        "in_batch": bool,
        "bootstrap_values": np.float32,
    }

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        n_envs: int,
        gamma: float,
        max_steps: int,
        max_bytes: int,
        device: th.device | str = "auto",
    ) -> None:
        super().__init__(1, observation_space, action_space, device, n_envs=n_envs)
        self.gamma = gamma
        self.max_steps = max_steps
        self.max_bytes = max_bytes
        self.observation_shapes = _observation_shapes(observation_space)
        self.reset()
        self.row_bytes = sum(array.nbytes for array in (*self.observations.values(), *self.steps.values()))
        self.max_rows = min(max_steps // n_envs, max_bytes // self.row_bytes)
        if self.max_rows < 1:
            raise ValueError(
                f"max_batch_steps={max_steps} and max_batch_bytes={max_bytes} must hold one step of each of the "
                f"{n_envs} envs ({self.row_bytes} bytes)"
            )
        self.buffer_size = min(INITIAL_ROWS, self.max_rows)
        self.reset()

    def reset(self) -> None:
        """Forget the stored steps (the allocated rows are kept)."""
        super().reset()
        rows = (self.buffer_size, self.n_envs)
        self.observations = {
            key: np.zeros((*rows, *shape), dtype=_observation_dtype(self.observation_space, key))
            for key, shape in self.observation_shapes.items()
        }
        per_step_shapes = {"actions": (self.action_dim,)}
        self.steps = {
            name: np.zeros((*rows, *per_step_shapes.get(name, ())), dtype=dtype) for name, dtype in self.STEP_FIELDS.items()
        }

    def add(
        self,
        obs: np.ndarray | dict[str, np.ndarray],
        actions: np.ndarray,
        rewards: np.ndarray,
        episode_starts: np.ndarray,
        episode_ends: np.ndarray,
        in_batch: np.ndarray,
        bootstrap_values: np.ndarray | None = None,
    ) -> None:
        """
        Store one vectorised step.

        :param obs: Observation s_h of each env
        :param actions: Action a_h of each env
        :param rewards: Reward r_h of each env
        :param episode_starts: Whether s_h is the first state of an episode, per env
        :param episode_ends: Whether the episode ended after this step (terminated or truncated), per env
        :param in_batch: Whether the step belongs to an episode of the batch (its env's quota is not full), per env
        :param bootstrap_values: Value added as ``gamma * bootstrap_value`` after the last reward of an episode
            (time-limit truncation with bootstrapping), per env; ``None`` for none
        """
        if self.pos == self.buffer_size:
            self._grow()
        observations = obs if isinstance(obs, dict) else {OBSERVATION_KEY: obs}
        for key, shape in self.observation_shapes.items():
            self.observations[key][self.pos] = np.asarray(observations[key]).reshape((self.n_envs, *shape))
        self.steps["actions"][self.pos] = np.asarray(actions).reshape((self.n_envs, self.action_dim))
        self.steps["rewards"][self.pos] = rewards
        self.steps["episode_starts"][self.pos] = episode_starts
        self.steps["episode_ends"][self.pos] = episode_ends
        self.steps["in_batch"][self.pos] = in_batch
        self.steps["bootstrap_values"][self.pos] = 0.0 if bootstrap_values is None else bootstrap_values
        self.pos += 1

    def _grow(self) -> None:
        """Double the rows of every per-step array, within ``max_steps`` transitions and ``max_bytes`` bytes."""
        new_size = min(2 * self.buffer_size, self.max_rows)
        if new_size <= self.buffer_size:
            raise ValueError(
                f"A batch of episodes needs more than {self.buffer_size} steps x {self.n_envs} envs = "
                f"{self.buffer_size * self.n_envs} transitions, {self.buffer_size * self.row_bytes:,} bytes "
                f"({self.row_bytes:,} per vectorised step); its longest episode has {self._longest_episode()} steps "
                f"so far. Bounds: max_batch_steps={self.max_steps}, max_batch_bytes={self.max_bytes:,}. Raise them, "
                "lower n_episodes, or bound the episode length (e.g. a gymnasium TimeLimit)."
            )

        def grown(array: np.ndarray) -> np.ndarray:
            padding = np.zeros((new_size - self.buffer_size, *array.shape[1:]), dtype=array.dtype)
            return np.concatenate((array, padding))

        self.observations = {key: grown(array) for key, array in self.observations.items()}
        self.steps = {name: grown(array) for name, array in self.steps.items()}
        self.buffer_size = new_size

    def _longest_episode(self) -> int:
        """:return: The most steps one episode has in the buffer (the episode may go on)"""
        starts = self.steps["episode_starts"][: self.pos]
        longest = 0
        for env_starts in starts.T:
            bounds = np.flatnonzero(np.r_[env_starts, True])
            longest = max(longest, int(np.diff(bounds).max(initial=0)), int(bounds[0]))
        return longest

    def _monte_carlo_returns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """
        :return: The discounted reward-to-go G_h = r_h + gamma * G_{h+1} of every stored step (G = 0 after an
            episode's last step, or its bootstrap value), the episode return R(tau) = G_0 repeated over the episode's
            steps, and the index h of each step in its episode; each of shape ``(rows, n_envs)``
        """
        rewards, episode_ends = self.steps["rewards"][: self.pos], self.steps["episode_ends"][: self.pos]
        episode_starts, bootstrap_values = self.steps["episode_starts"][: self.pos], self.steps["bootstrap_values"]
        rewards_to_go = np.zeros_like(rewards)
        reward_to_go = np.zeros(self.n_envs, dtype=np.float32)
        for row in reversed(range(self.pos)):
            next_value = np.where(episode_ends[row], bootstrap_values[row], reward_to_go)
            reward_to_go = rewards[row] + self.gamma * next_value
            rewards_to_go[row] = reward_to_go

        episode_returns = np.zeros_like(rewards)
        episode_steps = np.zeros(rewards.shape, dtype=np.int64)
        steps_into_episode = np.zeros(self.n_envs, dtype=np.int64)
        episode_return = np.zeros(self.n_envs, dtype=np.float32)
        for row in range(self.pos):
            steps_into_episode = np.where(episode_starts[row], 0, steps_into_episode + 1)
            episode_return = np.where(episode_starts[row], rewards_to_go[row], episode_return)
            episode_steps[row] = steps_into_episode
            episode_returns[row] = episode_return
        return rewards_to_go, episode_returns, episode_steps

    def episode_batch(self) -> EpisodeBatch:
        """
        :return: The steps of the batch's episodes with their Monte Carlo returns, as tensors on the buffer's device
        """
        rewards_to_go, episode_returns, episode_steps = self._monte_carlo_returns()
        # Transpose to (n_envs, rows) before masking so that each episode's steps are contiguous
        mask = self.steps["in_batch"][: self.pos].T

        def selected(array: np.ndarray) -> np.ndarray:
            return array[: self.pos].swapaxes(0, 1)[mask]

        observations = {key: self.to_torch(selected(array)) for key, array in self.observations.items()}
        batch_steps = selected(episode_steps)
        return EpisodeBatch(
            observations=observations if isinstance(self.observation_space, spaces.Dict) else observations[OBSERVATION_KEY],
            actions=self.to_torch(selected(self.steps["actions"])),
            rewards_to_go=self.to_torch(selected(rewards_to_go)),
            episode_returns=self.to_torch(selected(episode_returns)),
            episode_steps=self.to_torch(batch_steps),
            n_episodes=int(np.count_nonzero(batch_steps == 0)),
        )

    # BaseBuffer's abstract sampling method, typed to return SB3's sample tuples; an episode batch is never sampled
    def _get_samples(self, batch_inds: np.ndarray, env=None) -> None:  # type: ignore[override]
        """Not supported: the batch is read whole, episode by episode, with ``episode_batch()``."""
        raise NotImplementedError("EpisodeBuffer is read whole with episode_batch(), not sampled")


def _observation_shapes(observation_space: spaces.Space) -> dict[str, tuple[int, ...]]:
    """
    :param observation_space: Observation space
    :return: The shape of one env's observation per stored key (``OBSERVATION_KEY`` for a non-Dict space)
    """
    if isinstance(observation_space, spaces.Dict):
        # get_obs_shape returns a tuple for every non-Dict space (its union return type includes Dict's dict)
        return {key: get_obs_shape(space) for key, space in observation_space.spaces.items()}  # type: ignore[misc]
    return {OBSERVATION_KEY: get_obs_shape(observation_space)}  # type: ignore[dict-item]


def _observation_dtype(observation_space: spaces.Space, key: str) -> np.dtype:
    """
    :param observation_space: Observation space
    :param key: Stored key (see ``_observation_shapes``)
    :return: The dtype the observations of ``key`` are stored in: the space's own (uint8 images stay uint8)
    """
    space = observation_space[key] if isinstance(observation_space, spaces.Dict) else observation_space
    return np.dtype(space.dtype)
