"""REINFORCE.load: its own files (this release and 0.1.0) load, files of other algorithms and bad overrides are refused."""

import io
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import A2C, PPO

from sb3_reinforce import REINFORCE

# Saved by sb3_reinforce 0.1.0 (n_episodes=2, net_arch=[8], 200 CartPole-v1 steps), before the episode buffer was rebuilt
PREVIOUS_RELEASE_FILE = Path(__file__).parent / "data" / "reinforce_0.1.0_cartpole.zip"


@pytest.mark.parametrize("algorithm, name", [(PPO, "PPO"), (A2C, "A2C")])
def test_file_of_another_algorithm_is_refused(tmp_path, algorithm, name):
    algorithm("MlpPolicy", "CartPole-v1", n_steps=64, seed=0).save(tmp_path / "model")
    with pytest.raises(ValueError, match=rf"saved by .*{name}.*not by REINFORCE"):
        REINFORCE.load(tmp_path / "model")


def test_previous_release_file_loads_and_trains():
    with warnings.catch_warnings():
        # e.g. "Could not deserialize object rollout_buffer_class"
        warnings.simplefilter("error", UserWarning)
        # ...but not SB3's advice to train an MLP on the CPU, given on a machine with a GPU
        warnings.filterwarnings("ignore", message="You are trying to run REINFORCE on the GPU")
        model = REINFORCE.load(PREVIOUS_RELEASE_FILE, env=gym.make("CartPole-v1"))
        model.learn(50)
    assert (model.n_episodes, model.policy.net_arch) == (2, [8])
    assert model.num_timesteps > 0


def test_save_load_round_trip_keeps_parameters_and_settings(tmp_path):
    model = REINFORCE("MlpPolicy", "CartPole-v1", n_episodes=3, estimator="episode_return", baseline="mean", seed=0)
    model.learn(100)
    model.save(tmp_path / "model")
    loaded = REINFORCE.load(tmp_path / "model")
    assert (loaded.n_episodes, loaded.estimator, loaded.baseline) == (3, "episode_return", "mean")
    for name, parameter in model.policy.state_dict().items():
        assert th.equal(parameter, loaded.policy.state_dict()[name]), name
    observation = np.zeros((1, 4), dtype=np.float32)
    actions = [algorithm.predict(observation, deterministic=True)[0] for algorithm in (model, loaded)]
    assert np.array_equal(*actions)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(gamma=2), "gamma must be a float in"),
        (dict(estimator="foo"), "Unknown estimator 'foo'"),
        (dict(n_episodes=0), "n_episodes must be an int >= 1"),
    ],
)
def test_load_overrides_are_checked(tmp_path, overrides, match):
    REINFORCE("MlpPolicy", "CartPole-v1", seed=0).save(tmp_path / "model")
    with pytest.raises(ValueError, match=match):
        REINFORCE.load(tmp_path / "model", **overrides)


def test_load_from_a_file_object(tmp_path):
    model = REINFORCE("MlpPolicy", "CartPole-v1", n_episodes=3, seed=0)
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    assert REINFORCE.load(buffer).n_episodes == 3
