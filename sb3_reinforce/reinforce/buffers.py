from typing import NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer
from stable_baselines3.common.type_aliases import TensorDict


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


class EpisodeBufferMixin:
    """
    Turns an SB3 rollout buffer into a buffer of complete episodes.

    Steps are stored as in SB3, one row per vectorised step (``(buffer_size, n_envs)``), but:

    - each env has a quota of episodes; the steps an env takes after filling its quota are flagged
      as outside the batch and never used (an env cannot idle inside a ``VecEnv``),
    - the buffer starts small and doubles when full, up to ``max_steps`` transitions (all envs together),
      so memory follows the episodes actually held; exceeding ``max_steps`` raises ``ValueError``,
    - returns are Monte Carlo: no value bootstrap where an episode ends, except the optional
      ``bootstrap_values`` the algorithm passes for time-limit truncations.

    :param max_steps: Upper bound on the transitions (rows x n_envs) one batch may hold
    """

    buffer_size: int
    n_envs: int
    pos: int
    full: bool
    gamma: float
    observations: np.ndarray | dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    returns: np.ndarray
    observation_space: spaces.Space
    obs_shape: tuple[int, ...] | dict[str, tuple[int, ...]]
    action_dim: int
    device: th.device

    def __init__(self, *args, max_steps: int = 1_000_000, **kwargs) -> None:
        self.max_steps = max_steps
        super().__init__(*args, **kwargs)

    def reset(self) -> None:
        super().reset()  # type: ignore[misc]
        shape = (self.buffer_size, self.n_envs)
        self.episode_ends = np.zeros(shape, dtype=bool)
        self.bootstrap_values = np.zeros(shape, dtype=np.float32)
        self.in_batch = np.zeros(shape, dtype=bool)
        self.episode_steps = np.zeros(shape, dtype=np.int64)
        self.episode_returns = np.zeros(shape, dtype=np.float32)

    def add(  # type: ignore[override]
        self,
        obs: np.ndarray | dict[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        episode_start: np.ndarray,
        episode_end: np.ndarray,
        in_batch: np.ndarray,
        bootstrap_value: np.ndarray | None = None,
    ) -> None:
        """
        Store one vectorised step.

        :param obs: Observation s_h of each env
        :param action: Action a_h of each env
        :param reward: Reward r_h of each env
        :param episode_start: Whether s_h is the first state of an episode, per env
        :param episode_end: Whether the episode ended after this step (terminated or truncated), per env
        :param in_batch: Whether the step belongs to an episode of the batch (its env's quota is not full)
        :param bootstrap_value: Value added as ``gamma * bootstrap_value`` after the last reward of an episode
            (time-limit truncation with bootstrapping), per env; ``None`` for none
        """
        if self.pos == self.buffer_size:
            self._grow()
        self._store_observation(obs)
        self.actions[self.pos] = np.asarray(action).reshape((self.n_envs, self.action_dim))
        self.rewards[self.pos] = reward
        self.episode_starts[self.pos] = episode_start  # type: ignore[attr-defined]
        self.episode_ends[self.pos] = episode_end
        self.in_batch[self.pos] = in_batch
        if bootstrap_value is not None:
            self.bootstrap_values[self.pos] = bootstrap_value
        self.pos += 1

    def _store_observation(self, obs: np.ndarray | dict[str, np.ndarray]) -> None:
        if isinstance(self.observations, dict):
            for key, value in obs.items():  # type: ignore[union-attr]
                self.observations[key][self.pos] = np.asarray(value).reshape((self.n_envs, *self.obs_shape[key]))  # type: ignore[index]
        else:
            self.observations[self.pos] = np.asarray(obs).reshape((self.n_envs, *self.obs_shape))  # type: ignore[misc]

    def _grow(self) -> None:
        """Double the number of rows of every per-step array, within ``max_steps``."""
        new_size = min(2 * self.buffer_size, self.max_steps // self.n_envs)
        if new_size <= self.buffer_size:
            raise ValueError(
                f"A batch of episodes needs more than max_batch_steps={self.max_steps} transitions "
                f"({self.buffer_size} steps x {self.n_envs} envs). Increase max_batch_steps, lower n_episodes, "
                "or bound the episode length (e.g. a gymnasium TimeLimit)."
            )

        def grown(array: np.ndarray) -> np.ndarray:
            padding = np.zeros((new_size - self.buffer_size, *array.shape[1:]), dtype=array.dtype)
            return np.concatenate((array, padding))

        for name, value in list(vars(self).items()):
            if isinstance(value, np.ndarray) and value.shape[:1] == (self.buffer_size,):
                setattr(self, name, grown(value))
            elif isinstance(value, dict) and name == "observations":
                setattr(self, name, {key: grown(array) for key, array in value.items()})
        self.buffer_size = new_size

    def compute_monte_carlo_returns(self) -> None:
        """
        Discounted reward-to-go G_h = r_h + gamma * G_{h+1} within each episode (G = 0 after the last step,
        or the bootstrap value), and the episode return R(tau) = G_0 repeated over the episode's steps.
        """
        rows = range(self.pos)
        reward_to_go = np.zeros(self.n_envs, dtype=np.float32)
        for row in reversed(rows):
            next_value = np.where(self.episode_ends[row], self.bootstrap_values[row], reward_to_go)
            reward_to_go = self.rewards[row] + self.gamma * next_value
            self.returns[row] = reward_to_go

        steps_into_episode = np.zeros(self.n_envs, dtype=np.int64)
        episode_return = np.zeros(self.n_envs, dtype=np.float32)
        for row in rows:
            starts = self.episode_starts[row].astype(bool)  # type: ignore[attr-defined]
            steps_into_episode = np.where(starts, 0, steps_into_episode + 1)
            episode_return = np.where(starts, self.returns[row], episode_return)
            self.episode_steps[row] = steps_into_episode
            self.episode_returns[row] = episode_return

    def episode_batch(self) -> EpisodeBatch:
        """
        :return: The steps of the batch's episodes, as tensors on the buffer's device
        """
        # Transpose to (n_envs, rows) before masking so that each episode's steps are contiguous
        mask = self.in_batch[: self.pos].T

        def selected(array: np.ndarray) -> np.ndarray:
            return array[: self.pos].swapaxes(0, 1)[mask]

        if isinstance(self.observations, dict):
            observations: th.Tensor | TensorDict = {
                key: self.to_torch(selected(array))
                for key, array in self.observations.items()  # type: ignore[attr-defined]
            }
        else:
            observations = self.to_torch(selected(self.observations))  # type: ignore[attr-defined]
        episode_steps = selected(self.episode_steps)
        return EpisodeBatch(
            observations=observations,
            actions=self.to_torch(selected(self.actions).astype(np.float32)),  # type: ignore[attr-defined]
            rewards_to_go=self.to_torch(selected(self.returns)),  # type: ignore[attr-defined]
            episode_returns=self.to_torch(selected(self.episode_returns)),  # type: ignore[attr-defined]
            episode_steps=th.as_tensor(episode_steps, device=self.device),
            n_episodes=int(np.count_nonzero(episode_steps == 0)),
        )


class EpisodeRolloutBuffer(EpisodeBufferMixin, RolloutBuffer):
    """
    Rollout buffer of complete episodes for array observations (see ``EpisodeBufferMixin``).

    :param buffer_size: Initial number of rows (vectorised steps); the buffer grows as needed
    :param observation_space: Observation space
    :param action_space: Action space
    :param device: PyTorch device
    :param gae_lambda: Unused (returns are Monte Carlo); kept for SB3's signature
    :param gamma: Discount factor
    :param n_envs: Number of parallel environments
    :param max_steps: Upper bound on the transitions (rows x n_envs) one batch may hold
    """


class DictEpisodeRolloutBuffer(EpisodeBufferMixin, DictRolloutBuffer):
    """
    Rollout buffer of complete episodes for ``Dict`` observations (see ``EpisodeBufferMixin``).

    :param buffer_size: Initial number of rows (vectorised steps); the buffer grows as needed
    :param observation_space: Observation space
    :param action_space: Action space
    :param device: PyTorch device
    :param gae_lambda: Unused (returns are Monte Carlo); kept for SB3's signature
    :param gamma: Discount factor
    :param n_envs: Number of parallel environments
    :param max_steps: Upper bound on the transitions (rows x n_envs) one batch may hold
    """
