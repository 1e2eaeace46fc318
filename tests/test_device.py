"""
REINFORCE on a CUDA device: skipped where torch sees none. The rest of the suite builds its models with SB3's default
``device="auto"``, so on a machine with a GPU it runs there too (the unbiasedness tests included); these tests check
what "auto" leaves implicit: that the model, its batches and its actions are on the GPU, and that a model trained
there loads and acts the same on the CPU.
"""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.utils import obs_as_tensor
from torch.nn.utils import parameters_to_vector

from sb3_reinforce import REINFORCE
from sb3_reinforce.reinforce.sampling import action_sampler, fast_sampling

pytestmark = pytest.mark.skipif(not th.cuda.is_available(), reason="needs a CUDA device")


def test_learns_on_cuda_and_acts_alike_on_cpu(tmp_path: Path) -> None:
    model = REINFORCE("MlpPolicy", "CartPole-v1", n_episodes=4, seed=0, device="cuda")
    assert {parameter.device.type for parameter in model.policy.parameters()} == {"cuda"}
    before = parameters_to_vector(model.policy.parameters()).detach().clone()
    model.learn(2_000)
    assert model._n_updates > 0
    assert not th.equal(parameters_to_vector(model.policy.parameters()).detach(), before)
    batch = model.rollout_buffer.episode_batch()
    assert {batch.observations.device.type, batch.actions.device.type, batch.rewards_to_go.device.type} == {"cuda"}

    model.save(tmp_path / "model.zip")
    loaded = REINFORCE.load(tmp_path / "model.zip", device="cpu")
    assert th.equal(parameters_to_vector(loaded.policy.parameters()), parameters_to_vector(model.policy.parameters()).cpu())
    observations = np.stack([gym.make("CartPole-v1").reset(seed=seed)[0] for seed in range(32)])
    np.testing.assert_array_equal(
        loaded.predict(observations, deterministic=True)[0], model.predict(observations, deterministic=True)[0]
    )


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_fast_sampling_draws_sb3s_actions_on_cuda(env_id: str) -> None:
    # Categorical and diagonal Gaussian: the same draws as SB3's path from the same state of the CUDA generator
    model = REINFORCE("MlpPolicy", env_id, n_episodes=2, seed=0, device="cuda")
    assert fast_sampling(model.policy)
    env = gym.make(env_id)
    observations = obs_as_tensor(np.stack([env.reset(seed=seed)[0] for seed in range(256)]), model.device)
    th.manual_seed(1)
    fast = action_sampler(model.policy)(observations)
    th.manual_seed(1)
    with th.no_grad():
        sb3 = model.policy.get_distribution(observations).get_actions()
    assert fast.device.type == "cuda"
    assert th.equal(fast, sb3)
