"""Complete-episode batches: quotas, Monte Carlo returns against hand-computed sums, time limits, bounds and faults."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from sb3_reinforce import REINFORCE

GAMMA = 0.9


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
    np.testing.assert_allclose(batch.rewards_to_go.numpy(), rewards_to_go * 2, rtol=1e-6)
    np.testing.assert_allclose(batch.episode_returns.numpy(), [rewards_to_go[0]] * 8, rtol=1e-6)
    np.testing.assert_array_equal(batch.episode_steps.numpy(), [0, 1, 2, 3] * 2)
    np.testing.assert_array_equal(batch.observations.numpy().ravel(), [0, 1, 2, 3] * 2)
    assert batch.n_episodes == 2


def test_time_limit_ends_the_trajectory():
    env = make_vec_env(lambda: gym.wrappers.TimeLimit(CountingEnv(length=100), 3), n_envs=1)
    (batch,) = recorded_batches(env, n_episodes=1)
    np.testing.assert_allclose(batch.rewards_to_go.numpy(), [1 + GAMMA + GAMMA**2, 1 + GAMMA, 1.0], rtol=1e-6)


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
        recorder.batches[0].rewards_to_go.numpy(), [1 + GAMMA + GAMMA**2 * last, 1 + GAMMA * last, last], rtol=1e-6
    )


def test_quotas_per_env_and_no_episode_continued_across_updates():
    env = make_vec_env(RandomLengthEnv, n_envs=3, seed=0)
    batches = recorded_batches(env, n_updates=5, n_episodes=5)
    for batch in batches:
        assert batch.n_episodes == 5
        # Every episode starts at the environment's first observation and is complete
        first_observations = batch.observations[batch.episode_steps == 0]
        assert th.all(first_observations == 0)
        np.testing.assert_allclose(batch.episode_steps.numpy(), batch.observations.numpy().ravel())


def test_episode_lengths_are_not_biased_towards_short_episodes():
    # Mean length of RandomLengthEnv's episodes is 5.5; "whatever finished first" with 4 envs would be far shorter
    env = make_vec_env(RandomLengthEnv, n_envs=4, seed=0)
    batches = recorded_batches(env, n_updates=100, n_episodes=4)
    lengths = np.concatenate([np.diff(np.flatnonzero(np.r_[batch.episode_steps.numpy() == 0, True])) for batch in batches])
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
    # CartPole's first episodes take about 20 steps: a batch of 8 needs more than 100 transitions
    model = REINFORCE("MlpPolicy", "CartPole-v1", n_episodes=8, max_batch_steps=max_batch_steps, seed=0)
    assert model.rollout_buffer.buffer_size * model.n_envs <= max_batch_steps
    with pytest.raises(ValueError, match=f"max_batch_steps={max_batch_steps} "):
        model.learn(500)


def test_max_batch_steps_below_one_step_per_env_is_refused():
    with pytest.raises(ValueError, match="max_batch_steps=3 cannot hold one step of each of the 4 envs"):
        REINFORCE("MlpPolicy", make_vec_env(CountingEnv, n_envs=4), max_batch_steps=3)


def test_observations_keep_their_dtype():
    class ImageEnv(CountingEnv):
        def __init__(self):
            super().__init__()
            self.observation_space = spaces.Box(0, 255, shape=(36, 36, 1), dtype=np.uint8)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return np.full((36, 36, 1), self.step_index, dtype=np.uint8), {}

        def step(self, action):
            _, reward, terminated, truncated, info = super().step(action)
            return np.full((36, 36, 1), self.step_index, dtype=np.uint8), reward, terminated, truncated, info

    (batch,) = recorded_batches(make_vec_env(ImageEnv, n_envs=1), n_episodes=1, policy="CnnPolicy")
    assert batch.observations.dtype == th.uint8
    np.testing.assert_array_equal(batch.observations[:, 0, 0, 0].numpy(), [0, 1, 2, 3])


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
    np.testing.assert_array_equal(batch.observations.numpy().ravel(), batch.episode_steps.numpy())
    np.testing.assert_array_equal(batch.episode_steps.numpy(), [0, 1, 2, 3] * 4)


def test_non_finite_reward_is_refused_and_model_intact(tmp_path):
    model = REINFORCE("MlpPolicy", make_vec_env(lambda: CountingEnv(reward=np.nan), n_envs=1), n_episodes=1, seed=0)
    before = [param.detach().clone() for param in model.policy.parameters()]
    with pytest.raises(ValueError, match=r"Non-finite reward .* timestep 1"):
        model.learn(100)
    for first, second in zip(before, model.policy.parameters(), strict=True):
        assert th.equal(first, second)


def test_non_finite_loss_leaves_parameters_unchanged(tmp_path, monkeypatch):
    model = REINFORCE("MlpPolicy", make_vec_env(CountingEnv, n_envs=1), n_episodes=1, seed=0)
    model.learn(8)
    before = {name: param.detach().clone() for name, param in model.policy.named_parameters()}
    optimizer_state = str(model.policy.optimizer.state_dict())
    monkeypatch.setattr(model, "_estimator_weights", lambda batch, values: th.full_like(values, np.inf))
    with pytest.raises(ValueError, match=r"Non-finite loss .* update 3"):
        model.learn(8, reset_num_timesteps=False)
    for name, param in model.policy.named_parameters():
        assert th.equal(before[name], param), name
    assert str(model.policy.optimizer.state_dict()) == optimizer_state

    monkeypatch.undo()
    model.save(tmp_path / "model")
    REINFORCE.load(tmp_path / "model", env=model.get_env()).learn(8)


def test_non_finite_value_regression_is_refused(monkeypatch):
    env = make_vec_env(CountingEnv, n_envs=1)
    model = REINFORCE("MlpPolicy", env, n_episodes=1, baseline="value", n_critic_updates=2, seed=0)
    model.learn(8)
    monkeypatch.setattr(model.policy, "predict_values", lambda obs: th.full((len(obs), 1), np.inf, requires_grad=True))
    with pytest.raises(ValueError, match=r"Non-finite loss \(inf\) .* update 3 .* this optimizer step was not taken"):
        model.learn(8, reset_num_timesteps=False)
    assert all(th.isfinite(param).all() for param in model.policy.parameters())
