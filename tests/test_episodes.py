"""Complete-episode batches: quotas, Monte Carlo returns against hand-computed sums, time limits, bounds and faults."""

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from sb3_reinforce import REINFORCE
from tests.envs import CountingEnv, ImageEnv, RandomLengthEnv

GAMMA = 0.9


class BatchRecorder(BaseCallback):
    """Keeps the episode batch of every rollout."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.batches.append(self.model.rollout_buffer.episode_batch())


def recorded_batches(env, n_updates: int = 1, policy: str = "MlpPolicy", **kwargs) -> list:
    model = REINFORCE(policy, env, gamma=GAMMA, seed=0, **kwargs)
    recorder = BatchRecorder()
    model.learn(1, callback=recorder)
    for _ in range(n_updates - 1):
        model.learn(1, callback=recorder, reset_num_timesteps=False)
    return recorder.batches


def test_monte_carlo_returns_are_hand_computed_sums():
    (batch,) = recorded_batches(make_vec_env(CountingEnv, n_envs=1), n_episodes=2)
    rewards_to_go = [1 + GAMMA + GAMMA**2 + GAMMA**3, 1 + GAMMA + GAMMA**2, 1 + GAMMA, 1.0]
    np.testing.assert_allclose(batch.rewards_to_go.cpu().numpy(), rewards_to_go * 2, rtol=1e-6)
    np.testing.assert_allclose(batch.episode_returns.cpu().numpy(), [rewards_to_go[0]] * 8, rtol=1e-6)
    np.testing.assert_array_equal(batch.episode_steps.cpu().numpy(), [0, 1, 2, 3] * 2)
    np.testing.assert_array_equal(batch.observations.cpu().numpy().ravel(), [0, 1, 2, 3] * 2)
    assert batch.n_episodes == 2


def test_time_limit_ends_the_trajectory():
    env = make_vec_env(lambda: gym.wrappers.TimeLimit(CountingEnv(length=100), 3), n_envs=1)
    (batch,) = recorded_batches(env, n_episodes=1)
    np.testing.assert_allclose(batch.rewards_to_go.cpu().numpy(), [1 + GAMMA + GAMMA**2, 1 + GAMMA, 1.0], rtol=1e-6)


def test_bootstrap_truncated_adds_discounted_value():
    env = make_vec_env(lambda: gym.wrappers.TimeLimit(CountingEnv(length=100), 3), n_envs=1)
    model = REINFORCE("MlpPolicy", env, gamma=GAMMA, n_episodes=1, bootstrap_truncated=True, seed=0)
    # A constant value function V = 5
    with th.no_grad():
        for param in model.policy.mlp_extractor.value_net.parameters():
            param.zero_()
        model.policy.value_net.weight.zero_()
        model.policy.value_net.bias.fill_(5.0)
    recorder = BatchRecorder()
    model.learn(1, callback=recorder)
    last = 1 + GAMMA * 5.0
    np.testing.assert_allclose(
        recorder.batches[0].rewards_to_go.cpu().numpy(), [1 + GAMMA + GAMMA**2 * last, 1 + GAMMA * last, last], rtol=1e-6
    )


def test_quotas_per_env_and_no_episode_continued_across_updates():
    env = make_vec_env(RandomLengthEnv, n_envs=3, seed=0)
    batches = recorded_batches(env, n_updates=5, n_episodes=5)
    for batch in batches:
        assert batch.n_episodes == 5
        # Every episode starts at the environment's first observation and is complete
        first_observations = batch.observations[batch.episode_steps == 0]
        assert th.all(first_observations == 0)
        np.testing.assert_allclose(batch.episode_steps.cpu().numpy(), batch.observations.cpu().numpy().ravel())


def test_episode_lengths_are_not_biased_towards_short_episodes():
    # Mean length of RandomLengthEnv's episodes is 5.5; "whatever finished first" with 4 envs would be far shorter
    env = make_vec_env(RandomLengthEnv, n_envs=4, seed=0)
    batches = recorded_batches(env, n_updates=100, n_episodes=4)
    starts = [batch.episode_steps.cpu().numpy() == 0 for batch in batches]
    lengths = np.concatenate([np.diff(np.flatnonzero(np.r_[first_steps, True])) for first_steps in starts])
    standard_error = lengths.std() / np.sqrt(len(lengths))
    assert abs(lengths.mean() - 5.5) < 4 * standard_error


def test_buffer_grows_then_refuses_past_max_batch_steps():
    env = make_vec_env(lambda: CountingEnv(length=600), n_envs=2)
    (batch,) = recorded_batches(env, n_episodes=2)
    assert len(batch.actions) == 1200

    model = REINFORCE("MlpPolicy", make_vec_env(lambda: CountingEnv(length=600), n_envs=2), n_episodes=2, max_batch_steps=1000)
    with pytest.raises(ValueError, match="max_batch_steps=1000"):
        model.learn(1)


@pytest.mark.parametrize("max_batch_steps", [1, 10, 100])
def test_max_batch_steps_is_honoured_below_the_initial_buffer_size(max_batch_steps):
    # CartPole's first episodes take about 20 steps: a batch of 8 needs more than 100 transitions, a batch of one more
    # than 1 (more episodes than max_batch_steps are refused at construction: tests/test_validation.py)
    n_episodes = min(8, max_batch_steps)
    model = REINFORCE("MlpPolicy", "CartPole-v1", n_episodes=n_episodes, max_batch_steps=max_batch_steps, seed=0)
    assert model.rollout_buffer.buffer_size * model.n_envs <= max_batch_steps
    with pytest.raises(ValueError, match=f"max_batch_steps={max_batch_steps},"):
        model.learn(500)


def test_max_batch_steps_below_one_step_per_env_is_refused():
    with pytest.raises(
        ValueError, match=r"max_batch_steps=3 and max_batch_bytes=\d+ must hold one step of each of the 4 envs"
    ):
        REINFORCE("MlpPolicy", make_vec_env(CountingEnv, n_envs=4), n_episodes=2, max_batch_steps=3)


def test_max_batch_bytes_is_honoured():
    model = REINFORCE("CnnPolicy", make_vec_env(lambda: ImageEnv(length=10**9), n_envs=2), max_batch_bytes=10**6, seed=0)
    # 36x36 uint8 images: 1,296 bytes per observation, 2,622 per vectorised step of 2 envs with the other arrays
    assert model.rollout_buffer.row_bytes * model.rollout_buffer.buffer_size <= 10**6
    with pytest.raises(ValueError, match=r"longest episode has 381 steps so far.*max_batch_bytes=1,000,000"):
        model.learn(10_000)


@pytest.mark.slow
def test_endless_image_episode_stays_within_the_byte_bound(tmp_path):
    # 84x84x4 uint8 images (28 KiB a step) in an episode that never ends: the default max_batch_steps alone would let
    # the buffer grow to about 28 GB. The child process is capped at 8 GiB of address space so that a failure cannot
    # take the machine down.
    script = f"""
import resource
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from sb3_reinforce import REINFORCE
from tests.envs import CountingEnv

class EndlessImages(CountingEnv):
    def __init__(self):
        super().__init__(length=10**9)
        self.observation_space = spaces.Box(0, 255, shape=(84, 84, 4), dtype=np.uint8)
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros((84, 84, 4), dtype=np.uint8), {{}}
    def step(self, action):
        _, reward, terminated, truncated, info = super().step(action)
        return np.zeros((84, 84, 4), dtype=np.uint8), reward, terminated, truncated, info

resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))
model = REINFORCE("MlpPolicy", make_vec_env(EndlessImages, n_envs=1), max_batch_bytes={2**26}, seed=0)
baseline = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) * 1024
try:
    model.learn(10**6)
except ValueError as error:
    print(error)
print("growth", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[1]
    )
    assert result.returncode == 0, result.stderr
    assert "max_batch_bytes=67,108,864" in result.stdout
    growth = int(result.stdout.split("growth")[1])
    # The arrays (up to 1.5 x the bound while growing) and the policy's working memory
    assert growth < 1.5 * 2**26 + 2**26, growth


def test_observations_keep_their_dtype():
    (batch,) = recorded_batches(make_vec_env(ImageEnv, n_envs=1), n_episodes=1, policy="CnnPolicy")
    assert batch.observations.dtype == th.uint8
    np.testing.assert_array_equal(batch.observations[:, 0, 0, 0].cpu().numpy(), [0, 1, 2, 3])


class StopAfter(BaseCallback):
    """Stops the collection at its ``n_calls``-th step."""

    def __init__(self, n_calls: int):
        super().__init__()
        self.stop_at = n_calls

    def _on_step(self) -> bool:
        return self.n_calls < self.stop_at


@pytest.mark.parametrize("stop_at", [1, 4, 5, 6])
def test_a_stopped_collection_leaves_no_stale_step(stop_at):
    # With episodes of 4 steps, stopping at step 4 leaves every env at the start of a new episode: the case where
    # the stale observation used to be spliced into the next batch
    model = REINFORCE("MlpPolicy", make_vec_env(CountingEnv, n_envs=2), n_episodes=4, gamma=GAMMA, seed=0)
    model.learn(100, callback=StopAfter(stop_at))
    recorder = BatchRecorder()
    model.learn(1, callback=recorder, reset_num_timesteps=False)
    (batch,) = recorder.batches
    # Every step h of every episode holds the observation of time index h: fresh, complete episodes
    np.testing.assert_array_equal(batch.observations.cpu().numpy().ravel(), batch.episode_steps.cpu().numpy())
    np.testing.assert_array_equal(batch.episode_steps.cpu().numpy(), [0, 1, 2, 3] * 4)


def test_non_finite_reward_is_refused_and_model_intact(tmp_path):
    model = REINFORCE("MlpPolicy", make_vec_env(lambda: CountingEnv(reward=np.nan), n_envs=1), n_episodes=1, seed=0)
    before = [param.detach().clone() for param in model.policy.parameters()]
    with pytest.raises(ValueError, match=r"Non-finite reward .* timestep 1"):
        model.learn(100)
    for first, second in zip(before, model.policy.parameters(), strict=True):
        assert th.equal(first, second)


@pytest.mark.parametrize("kwargs", [{}, dict(use_sde=True), dict(use_sde=True, policy_kwargs=dict(squash_output=True))])
def test_multi_dimensional_box_actions(kwargs):
    class MatrixActionEnv(CountingEnv):
        def __init__(self):
            super().__init__()
            self.action_space = spaces.Box(-1, 1, shape=(2, 2))

        def step(self, action):
            assert action.shape == (2, 2)
            return super().step(action)

    (batch,) = recorded_batches(make_vec_env(MatrixActionEnv, n_envs=2), n_episodes=2, **kwargs)
    assert batch.actions.shape == (8, 4)
