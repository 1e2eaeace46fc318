"""Bad constructor values that used to pass (or failed late with a raw error) are refused up front, naming the argument."""

import numpy as np
import pytest

from sb3_reinforce import REINFORCE


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        # A YAML "no" or "False" is a truthy string: it would turn the option on
        (dict(normalize_advantage="no"), TypeError, "normalize_advantage must be True or False"),
        (dict(bootstrap_truncated="False"), TypeError, "bootstrap_truncated must be True or False"),
        (dict(gamma=True), TypeError, "gamma must be a float in"),
        (dict(gamma="0.9"), TypeError, "gamma must be a float in"),
        (dict(gamma=np.nan), ValueError, "gamma must be a float in"),
        (dict(ent_coef=np.nan), ValueError, "ent_coef must be a finite float >= 0"),
        (dict(ent_coef=np.inf), ValueError, "ent_coef must be a finite float >= 0"),
        (dict(ent_coef="0.01"), TypeError, "ent_coef must be a finite float >= 0"),
        (dict(ent_coef=-0.01), ValueError, "ent_coef must be a finite float >= 0"),
        (dict(vf_coef=np.nan), ValueError, "vf_coef must be a finite float >= 0"),
        (dict(env=None), TypeError, "env must be a gymnasium env, a VecEnv or a registered env id"),
        # Arguments SB3 takes as they are
        (dict(learning_rate=np.nan), ValueError, "learning_rate must be a finite float >= 0 or a schedule"),
        (dict(learning_rate=-1e-3), ValueError, "learning_rate must be a finite float >= 0 or a schedule"),
        (dict(learning_rate="1e-3"), TypeError, "learning_rate must be a finite float >= 0 or a schedule"),
        (dict(use_sde="yes"), TypeError, "use_sde must be True or False"),
        (dict(sde_sample_freq=2.5), TypeError, "sde_sample_freq must be an int"),
        (dict(stats_window_size=0), ValueError, "stats_window_size must be an int >= 1"),
        (dict(verbose=3), ValueError, "verbose must be 0, 1 or 2"),
        (dict(verbose="1"), TypeError, "verbose must be 0, 1 or 2"),
        (dict(seed=-1), TypeError, "seed must be None or an int >= 0"),
        (dict(seed=1.5), TypeError, "seed must be None or an int >= 0"),
        (dict(tensorboard_log=3), TypeError, "tensorboard_log must be None or a folder path"),
        (dict(policy_kwargs="dict(net_arch=[8])"), TypeError, "policy_kwargs must be None or a dict"),
    ],
)
def test_bad_value_is_refused_at_construction(kwargs: dict, error: type[Exception], message: str) -> None:
    arguments = {"policy": "MlpPolicy", "env": "CartPole-v1", **kwargs}
    with pytest.raises(error, match=message):
        REINFORCE(**arguments)


@pytest.mark.parametrize("kwargs", [dict(normalize_advantage=np.bool_(True)), dict(gamma=np.float32(0.9)), dict(ent_coef=0)])
def test_numpy_and_int_values_are_accepted(kwargs: dict) -> None:
    REINFORCE("MlpPolicy", "CartPole-v1", **kwargs)
