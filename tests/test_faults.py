"""
No silent corruption: every step of an update (policy gradient, line search, value regression) is checked before and
after; a refused update restores parameters and optimizer state, counts nothing and names its cause.
"""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_reinforce import REINFORCE
from tests.envs import CountingEnv, ImageEnv


def training_state(model: REINFORCE) -> tuple[dict, str]:
    """The parameters (cloned) and the optimizer state (as text) of a model."""
    parameters = {name: param.detach().clone() for name, param in model.policy.named_parameters()}
    return parameters, str(model.policy.optimizer.state_dict()["state"])


def assert_state_unchanged(model: REINFORCE, state: tuple[dict, str]) -> None:
    parameters, optimizer_state = state
    for name, param in model.policy.named_parameters():
        assert th.equal(parameters[name], param), name
    assert str(model.policy.optimizer.state_dict()["state"]) == optimizer_state


def trained(n_updates: int = 2, env=CountingEnv, **kwargs) -> REINFORCE:
    """A model after ``n_updates`` updates of one 4-step episode each (Adam has state)."""
    model = REINFORCE("MlpPolicy", make_vec_env(env, n_envs=1), n_episodes=1, seed=0, **kwargs)
    model.learn(4 * n_updates)
    return model


def test_non_finite_loss_is_refused_and_the_model_still_trains(tmp_path, monkeypatch):
    model = trained()
    state = training_state(model)
    monkeypatch.setattr(model, "_estimator_weights", lambda batch, values: th.full_like(values, np.inf))
    with pytest.raises(ValueError, match=r"Update 3 at timestep 12 refused: the policy-gradient loss is (inf|nan)"):
        model.learn(4, reset_num_timesteps=False)
    assert_state_unchanged(model, state)
    assert model._n_updates == 2

    monkeypatch.undo()
    model.save(tmp_path / "model")
    REINFORCE.load(tmp_path / "model", env=model.get_env()).learn(8)


@pytest.mark.parametrize("learning_rate", [np.inf, np.nan, -1e-3])
def test_bad_learning_rate_from_a_schedule_is_refused(learning_rate):
    # Fine for the first updates, then the schedule returns a bad value
    current_rate = [1e-3]
    model = trained(learning_rate=lambda progress: current_rate[0])
    state = training_state(model)
    current_rate[0] = learning_rate
    with pytest.raises(ValueError, match=r"refused: the learning rate is .*not a finite value >= 0"):
        model.learn(8, reset_num_timesteps=False)
    assert_state_unchanged(model, state)


def test_constant_infinite_learning_rate_is_refused_at_construction():
    with pytest.raises(ValueError, match="learning_rate must be a finite float >= 0 or a schedule, got inf"):
        REINFORCE("MlpPolicy", make_vec_env(CountingEnv, n_envs=1), learning_rate=np.inf)


@pytest.mark.parametrize("max_grad_norm", [None, 0.5])
def test_overflowing_returns_are_named(max_grad_norm):
    env = make_vec_env(lambda: CountingEnv(reward=1e30), n_envs=1)
    model = REINFORCE("MlpPolicy", env, n_episodes=1, baseline=None, max_grad_norm=max_grad_norm, seed=0)
    state = training_state(model)
    with pytest.raises(ValueError, match=r"largest \|return\| 3.94e\+30.*VecNormalize.*normalize_advantage=True"):
        model.learn(4)
    assert_state_unchanged(model, state)


def test_refused_value_regression_restores_the_whole_update(monkeypatch):
    model = trained(n_critic_updates=2)
    state = training_state(model)
    # The policy-gradient step goes through, then the first value-regression step meets an infinite loss
    fit_value_function = model._fit_value_function

    def infinite(obs: th.Tensor) -> th.Tensor:
        return th.full((len(obs), 1), np.inf, device=obs.device, requires_grad=True)

    def infinite_values(batch):
        monkeypatch.setattr(model.policy, "predict_values", infinite)
        fit_value_function(batch)

    monkeypatch.setattr(model, "_fit_value_function", infinite_values)
    with pytest.raises(ValueError, match=r"refused: the value-regression loss is inf.*Nothing of this update was applied"):
        model.learn(4, reset_num_timesteps=False)
    assert_state_unchanged(model, state)
    assert model._n_updates == 2


@pytest.mark.parametrize("corrupted", ["gradient", "overflowing gradient", "parameter", "optimizer state"])
@pytest.mark.parametrize("critic_step", [1, 3])
def test_value_regression_step_leaving_a_non_finite_state_is_refused(monkeypatch, critic_step, corrupted):
    # Each value-regression step's loss is checked; the state once, after the last step. A corruption by the first of
    # 3 steps is refused at a later check, one by the last step at the final check
    model = trained(n_critic_updates=3)
    state = training_state(model)
    optimizer = model.policy.optimizer
    adam_step = optimizer.step
    steps = []

    def corrupting_step(*args, **kwargs):
        # Step 1 of an update is the policy-gradient step, then one value-regression step per epoch (4 transitions)
        steps.append(None)
        weight = model.policy.value_net.weight
        corrupt = len(steps) == 1 + critic_step
        if corrupt and corrupted.endswith("gradient"):
            weight.grad[0, 0] = np.nan if corrupted == "gradient" else 1e30
        adam_step(*args, **kwargs)
        if corrupt and corrupted in ("parameter", "optimizer state"):
            with th.no_grad():
                if corrupted == "parameter":
                    weight[0, 0] = np.nan
                else:
                    optimizer.state[weight]["exp_avg_sq"][0, 0] = np.inf

    monkeypatch.setattr(optimizer, "step", corrupting_step)
    with pytest.raises(ValueError, match=r"refused: the value-regression .*Nothing of this update was applied"):
        model.learn(4, reset_num_timesteps=False)
    assert_state_unchanged(model, state)
    assert model._n_updates == 2


def test_value_regression_leaves_the_policy_outputs_unchanged_with_a_shared_features_extractor(monkeypatch):
    model = REINFORCE("CnnPolicy", make_vec_env(ImageEnv, n_envs=1), n_episodes=2, n_critic_updates=3, seed=0)
    assert model.policy.share_features_extractor
    images = np.stack([np.full((1, 36, 36), value, dtype=np.uint8) for value in range(5)])
    observations = th.as_tensor(images, device=model.device)
    recorded = []
    fit_value_function = model._fit_value_function

    def outputs() -> tuple[th.Tensor, th.Tensor]:
        with th.no_grad():
            return model.policy.get_distribution(observations).distribution.probs, model.policy.predict_values(observations)

    def recording(batch):
        before = outputs()
        fit_value_function(batch)
        recorded.append((before, outputs()))

    monkeypatch.setattr(model, "_fit_value_function", recording)
    model.learn(16)
    assert len(recorded) == 2
    for (probs_before, values_before), (probs_after, values_after) in recorded:
        assert th.equal(probs_before, probs_after)
        # The value regression did move the value function
        assert not th.equal(values_before, values_after)


def test_schedule_is_never_evaluated_outside_zero_one():
    progresses = []

    def schedule(progress: float) -> float:
        progresses.append(progress)
        return 1e-3 * progress

    # Episodes of 100 steps with 4 envs: the last batch of learn(100) ends at 400 steps
    model = REINFORCE(
        "MlpPolicy", make_vec_env(lambda: CountingEnv(length=100), n_envs=4), n_episodes=4, learning_rate=schedule, seed=0
    )
    model.learn(100)
    assert model.num_timesteps == 400
    assert min(progresses) == 0.0
    assert max(progresses) <= 1.0
