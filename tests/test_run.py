"""Quick learn/save/load/predict runs over spaces, vec envs, callbacks and options (like sb3-contrib's test_run.py)."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import (
    FakeImageEnv,
    IdentityEnv,
    IdentityEnvBox,
    IdentityEnvMultiBinary,
    IdentityEnvMultiDiscrete,
    SimpleMultiObsEnv,
)
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize

from sb3_reinforce import REINFORCE

SPACE_CASES = {
    "discrete": ("MlpPolicy", lambda: IdentityEnv(4, ep_length=20)),
    "box": ("MlpPolicy", lambda: IdentityEnvBox(ep_length=20)),
    "multi_discrete": ("MlpPolicy", lambda: IdentityEnvMultiDiscrete(2, ep_length=20)),
    "multi_binary": ("MlpPolicy", lambda: IdentityEnvMultiBinary(3, ep_length=20)),
    "image": ("CnnPolicy", lambda: FakeImageEnv(screen_height=36, screen_width=36, n_channels=1)),
    "dict": ("MultiInputPolicy", lambda: SimpleMultiObsEnv(random_start=True)),
}


@pytest.mark.parametrize("case", SPACE_CASES)
def test_learn_save_load_predict(case, tmp_path):
    policy, make_env = SPACE_CASES[case]
    env = make_vec_env(make_env, n_envs=2, seed=0)
    model = REINFORCE(policy, env, n_episodes=2, seed=0)
    model.learn(300)
    observations = env.reset()
    actions, _ = model.predict(observations, deterministic=True)

    model.save(tmp_path / "model")
    loaded = REINFORCE.load(tmp_path / "model", env=env)
    loaded_actions, _ = loaded.predict(observations, deterministic=True)
    np.testing.assert_array_equal(actions, loaded_actions)
    # Training goes on after load
    loaded.learn(100, reset_num_timesteps=False)
    assert loaded.num_timesteps > model.num_timesteps


@pytest.mark.parametrize("estimator", ["episode_return", "reward_to_go"])
@pytest.mark.parametrize("baseline", [None, "mean", "value"])
@pytest.mark.parametrize("normalize_advantage", [False, True])
def test_options(estimator, baseline, normalize_advantage):
    model = REINFORCE(
        "MlpPolicy",
        "CartPole-v1",
        n_episodes=2,
        estimator=estimator,
        baseline=baseline,
        normalize_advantage=normalize_advantage,
        ent_coef=0.01,
        seed=0,
    )
    actor_before = model.policy.action_net.weight.detach().clone()
    model.learn(200)
    assert_one_update_per_batch(model)
    assert not th.equal(model.policy.action_net.weight, actor_before)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(gamma_weighting=False),
        dict(bootstrap_truncated=True),
        dict(max_grad_norm=None),
        dict(n_critic_updates=3, critic_batch_size=16),
        dict(target_kl=0.01, n_critic_updates=1),
        dict(learning_rate=lambda progress: 1e-3 * progress),
        dict(use_sde=True, sde_sample_freq=4),
        dict(policy_kwargs=dict(net_arch=[16], optimizer_class=th.optim.SGD)),
    ],
)
def test_more_options(kwargs):
    env_id = "Pendulum-v1" if kwargs.get("use_sde") else "CartPole-v1"
    model = REINFORCE("MlpPolicy", env_id, n_episodes=1, seed=0, **kwargs)
    actor_before = model.policy.action_net.weight.detach().clone()
    model.learn(250)
    assert_one_update_per_batch(model)
    assert not th.equal(model.policy.action_net.weight, actor_before)


def assert_one_update_per_batch(model: REINFORCE) -> None:
    """
    On one env: every update took the next ``n_episodes`` complete episodes, and every step taken was in one of them
    (the episodes as the Monitor wrapper counted them).
    """
    lengths = [info["l"] for info in model.ep_info_buffer]
    assert len(lengths) == model._n_updates * model.n_episodes > 0
    assert sum(lengths) == model.num_timesteps


def test_subproc_vec_env_trains_as_dummy_vec_env():
    """Through VecNormalize, envs in subprocesses give the model that envs in this process give (same seeds)."""

    def trained(vec_env_cls: type[VecEnv], **vec_env_kwargs) -> tuple[th.Tensor, np.ndarray]:
        env = make_vec_env("CartPole-v1", n_envs=2, seed=0, vec_env_cls=vec_env_cls, vec_env_kwargs=vec_env_kwargs)
        env = VecNormalize(env)
        try:
            model = REINFORCE("MlpPolicy", env, n_episodes=4, seed=0).learn(500)
            return _parameters(model), env.obs_rms.mean
        finally:
            env.close()

    # Forked subprocesses start without importing torch again (seconds)
    subproc_parameters, subproc_mean = trained(SubprocVecEnv, start_method="fork")
    dummy_parameters, dummy_mean = trained(DummyVecEnv)
    assert th.equal(subproc_parameters, dummy_parameters)
    np.testing.assert_array_equal(subproc_mean, dummy_mean)


# SB3's progress bar draws with tqdm.rich, which warns that it is experimental
@pytest.mark.filterwarnings("ignore:rich is experimental")
def test_callbacks_logger_and_progress_bar(tmp_path):
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=1)
    eval_callback = EvalCallback(eval_env, eval_freq=100, n_eval_episodes=2, log_path=str(tmp_path / "eval"))
    checkpoint = CheckpointCallback(save_freq=200, save_path=str(tmp_path / "checkpoints"))
    model = REINFORCE("MlpPolicy", "CartPole-v1", n_episodes=2, seed=0, tensorboard_log=str(tmp_path / "tb"))
    model.learn(600, callback=[eval_callback, checkpoint], progress_bar=True)

    # Called at every step (one env): an evaluation every 100 steps, a checkpoint every 200
    assert eval_callback.evaluations_timesteps == list(range(100, model.num_timesteps + 1, 100))
    checkpoints = sorted(path.name for path in (tmp_path / "checkpoints").glob("*.zip"))
    assert checkpoints == sorted(f"rl_model_{steps}_steps.zip" for steps in range(200, model.num_timesteps + 1, 200))
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    logged = model.logger.name_to_value
    for key in ("train/policy_loss", "train/value_loss", "train/entropy_loss", "train/explained_variance"):
        assert key in logged or key in getattr(model.logger, "name_to_excluded", {}), key


def test_callback_stops_training():
    class StopAfter(BaseCallback):
        def _on_step(self) -> bool:
            return self.n_calls < 10

    model = REINFORCE("MlpPolicy", "CartPole-v1", n_episodes=4, seed=0)
    model.learn(10_000, callback=StopAfter())
    assert model.num_timesteps == 10
    assert model._n_updates == 0  # the incomplete batch is not used


def test_same_seed_same_results():
    def trained_parameters() -> list[th.Tensor]:
        model = REINFORCE("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=3), n_episodes=4, seed=3)
        model.learn(1500)
        return [param.detach().clone() for param in model.policy.parameters()]

    for first, second in zip(trained_parameters(), trained_parameters(), strict=True):
        assert th.equal(first, second)


def _untrained(**kwargs) -> REINFORCE:
    return REINFORCE("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), n_episodes=2, seed=0, **kwargs)


def _one_update(**kwargs) -> REINFORCE:
    """A model after one update on one batch (the same batch for any kwargs that leave collection alone)."""
    return _untrained(**kwargs).learn(1)


def _parameters(model: REINFORCE) -> th.Tensor:
    return th.nn.utils.parameters_to_vector(model.policy.parameters()).detach()


def test_critic_updates_fit_the_value_head_only():
    joint_step_only = _one_update(critic_batch_size=8)
    with_critic_updates = _one_update(n_critic_updates=10, critic_batch_size=8)
    batch = with_critic_updates.rollout_buffer.episode_batch()
    assert th.equal(batch.rewards_to_go, joint_step_only.rollout_buffer.episode_batch().rewards_to_go)

    def value_loss(model: REINFORCE) -> float:
        with th.no_grad():
            return th.nn.functional.mse_loss(
                model.policy.predict_values(batch.observations).flatten(), batch.rewards_to_go
            ).item()

    assert value_loss(with_critic_updates) < value_loss(joint_step_only)
    for (name, first), second in zip(
        joint_step_only.policy.named_parameters(), with_critic_updates.policy.parameters(), strict=True
    ):
        assert th.equal(first, second) != ("value" in name), name


@pytest.mark.parametrize("target_kl", [1e-3, 1e-2])
def test_target_kl_shrinks_the_step_along_its_direction(target_kl):
    # A large step: its KL is far above both limits
    untrained = _untrained()
    whole_step, limited = _one_update(learning_rate=0.1), _one_update(learning_rate=0.1, target_kl=target_kl)
    step_fraction = limited.logger.name_to_value["train/step_fraction"]
    assert 0 < step_fraction < 1

    # The limited step is the whole one times step_fraction...
    step = _parameters(whole_step) - _parameters(untrained)
    assert th.allclose(_parameters(limited) - _parameters(untrained), step_fraction * step, atol=1e-6)

    # ...and the approximate KL between the policies before and after, recomputed here, is within the limit,
    # while the whole step's is not
    batch = limited.rollout_buffer.episode_batch()
    actions = batch.actions.long().flatten()

    def approx_kl(model: REINFORCE) -> float:
        with th.no_grad():
            log_prob_before = untrained.policy.get_distribution(batch.observations).log_prob(actions)
            log_ratio = model.policy.get_distribution(batch.observations).log_prob(actions) - log_prob_before
            return th.mean(th.exp(log_ratio) - 1 - log_ratio).item()

    assert approx_kl(limited) == pytest.approx(limited.logger.name_to_value["train/approx_kl"], rel=1e-4)
    assert approx_kl(limited) <= target_kl < approx_kl(whole_step)


@pytest.mark.parametrize("case", SPACE_CASES)
def test_target_kl_on_every_space(case):
    policy, make_env = SPACE_CASES[case]
    model = REINFORCE(
        policy, make_vec_env(make_env, n_envs=2, seed=0), n_episodes=2, learning_rate=0.05, target_kl=1e-4, seed=0
    )
    model.learn(100)
    logged = model.logger.name_to_value
    # The last step was shrunk to fit, not undone: its KL is within the limit
    assert 0 < logged["train/step_fraction"] < 1
    assert 0 < logged["train/approx_kl"] <= 1e-4


def test_target_kl_keeps_a_small_step_whole_and_undoes_one_that_never_fits():
    assert th.equal(_parameters(_one_update(target_kl=1e6)), _parameters(_one_update()))

    untrained = _untrained()
    # 10 halvings divide a KL by about 4**10: not enough for this limit
    undone = _one_update(learning_rate=0.1, target_kl=1e-12)
    assert undone.logger.name_to_value["train/step_fraction"] == 0.0
    assert th.equal(_parameters(undone), _parameters(untrained))


def test_critic_updates_with_dict_observations():
    policy, make_env = SPACE_CASES["dict"]
    model = REINFORCE(policy, make_vec_env(make_env, n_envs=2, seed=0), n_episodes=2, n_critic_updates=2, critic_batch_size=16)
    model.learn(200)
    # Only the value loss reached the parameters in the last optimizer steps
    assert model.policy.action_net.weight.grad is None
    assert model.policy.value_net.weight.grad is not None


def test_cartpole_learns():
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = REINFORCE("MlpPolicy", env, learning_rate=1e-2, n_episodes=8, normalize_advantage=True, max_grad_norm=None, seed=0)
    # Sampled actions (the policy REINFORCE optimises): an untrained policy scores about 22
    before, _ = evaluate_policy(model, env, n_eval_episodes=20, deterministic=False)
    # Seeds 0 to 4 score 290 to 480 after 15k steps
    model.learn(15_000)
    after, _ = evaluate_policy(model, env, n_eval_episodes=20, deterministic=False)
    print(f"CartPole-v1 mean return: {before:.1f} before, {after:.1f} after 15k steps")
    assert before < 60
    assert after > 200


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(estimator="sum"), ValueError),
        (dict(baseline="median"), ValueError),
        (dict(n_episodes=0), ValueError),
        (dict(n_episodes=2.5), TypeError),
        (dict(gamma=1.5), ValueError),
        (dict(gamma=-0.1), ValueError),
        (dict(gamma_weighting="yes"), TypeError),
        (dict(estimator="episode_return", gamma_weighting=False), ValueError),
        (dict(baseline="mean", n_episodes=1), ValueError),
        (dict(bootstrap_truncated=True, baseline=None), ValueError),
        (dict(vf_coef=-1.0), ValueError),
        (dict(max_grad_norm=0.0), ValueError),
        (dict(target_kl=0.0), ValueError),
        (dict(target_kl=-0.01), ValueError),
        (dict(target_kl="0.01"), TypeError),
        (dict(max_batch_steps=0), ValueError),
        (dict(n_critic_updates=-1), ValueError),
        (dict(n_critic_updates=2.0), TypeError),
        (dict(critic_batch_size=0), ValueError),
        (dict(n_critic_updates=1, baseline="mean"), ValueError),
    ],
)
def test_bad_hyperparameters(kwargs, error):
    with pytest.raises(error, match="|".join(kwargs)):
        REINFORCE("MlpPolicy", "CartPole-v1", **kwargs)


def test_unsupported_space():
    class TupleActionEnv(IdentityEnv):
        def __init__(self):
            super().__init__(2)
            self.action_space = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(2)))

    with pytest.raises(TypeError, match="Discrete"):
        REINFORCE("MlpPolicy", TupleActionEnv())
