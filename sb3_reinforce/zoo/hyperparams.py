"""The zoo's hyperparameters as Python objects: constructor keyword arguments, step budget, evaluation env."""

import argparse
import contextlib
import importlib.resources
import io
import json
import os
import re
from typing import Any

import yaml
from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3.common.vec_env import VecEnv

CONFIG_PACKAGE = "sb3_reinforce.zoo_configs"
# The keys whose string values rl-zoo3 reads as linear schedules (ExperimentManager._preprocess_schedules)
SCHEDULE_KEYS = ("learning_rate", "clip_range", "clip_range_vf", "delta_std")


def default_config_file(algo: str, env_id: str) -> str | None:
    """
    The hyperparameter file used when the user names none.

    :param algo: rl-zoo3 name of the algorithm (``"reinforce"``, ``"ppo"``, ...)
    :param env_id: Gymnasium id of the environment
    :return: Path of this package's ``zoo_configs/<algo>.yml`` if it has an entry for ``env_id`` (or a ``default``
        entry), else ``None``: rl-zoo3's own file applies
    """
    config_file = importlib.resources.files(CONFIG_PACKAGE) / f"{algo}.yml"
    if not config_file.is_file():
        return None
    entries = yaml.safe_load(config_file.read_text())
    return str(config_file) if env_id in entries or "default" in entries else None


def _read_entry(
    algo: str,
    env_id: str,
    seed: int | None,
    conf_file: str | None,
    env_kwargs: dict[str, Any] | None,
    overrides: dict[str, Any] | None,
) -> tuple[ExperimentManager, dict[str, Any], dict[str, Any]]:
    """
    Read the entry of ``algo`` on ``env_id``, overrides applied, with rl-zoo3's own code, quietly.

    :return: The experiment manager, the hyperparameters and the entry as rl-zoo3 saves it in a run's ``config.yml``
        (keys sorted, values as written in the YAML file)
    """
    manager = ExperimentManager(
        argparse.Namespace(),
        algo,
        env_id,
        # Nothing is written there: envs are created with no_log=True
        log_folder=os.devnull,
        env_kwargs=env_kwargs,
        seed=seed,  # type: ignore[arg-type]  # rl-zoo3 types it int; None draws a random seed there too
        # Applied over the entry as rl-zoo3's --hyperparams are: schedules and policy_kwargs strings are processed
        hyperparams=overrides,
        verbose=0,
        config=conf_file or default_config_file(algo, env_id),
    )
    # read_hyperparameters() prints the hyperparameters whatever the verbosity
    with contextlib.redirect_stdout(io.StringIO()):
        hyperparams, saved_hyperparams = manager.read_hyperparameters()
    return manager, hyperparams, dict(saved_hyperparams)


def _prepared_manager(
    algo: str,
    env_id: str,
    seed: int | None,
    conf_file: str | None,
    env_kwargs: dict[str, Any] | None,
    overrides: dict[str, Any] | None = None,
) -> tuple[ExperimentManager, dict[str, Any]]:
    """
    Read and pre-process the hyperparameters of ``algo`` on ``env_id`` with rl-zoo3's own code, quietly.
    rl-zoo3 has no public function that returns them without building the model in a new log folder
    (``setup_experiment``), hence the calls to its ``_preprocess_*`` methods (rl-zoo3 is pinned below 3.0).

    :return: The experiment manager (it knows n_envs, n_timesteps, wrappers, normalisation)
        and the constructor keyword arguments (without env and action noise)
    """
    manager, hyperparams, _ = _read_entry(algo, env_id, seed, conf_file, env_kwargs, overrides)
    _check_schedule_strings(hyperparams, algo, env_id)
    with contextlib.redirect_stdout(io.StringIO()):
        hyperparams, manager.env_wrapper, _, manager.vec_env_wrapper = manager._preprocess_hyperparams(hyperparams)
    return manager, hyperparams


def entry_hyperparameters(algo: str, env_id: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """
    What a comparison's run is trained with: the zoo entry of ``algo`` on ``env_id`` with ``overrides`` applied, as
    written in the YAML file (``lin_1e-3``, ``"dict(net_arch=[64, 64])"``), keys sorted, JSON values. Its
    ``n_timesteps`` is left out: a comparison sets the budget of every run.

    :param algo: rl-zoo3 name of the algorithm
    :param env_id: Gymnasium id of the environment
    :param overrides: Hyperparameters replacing the entry's, as in ``get_hyperparameters``
    :return: The entry's hyperparameters
    """
    _, _, saved_hyperparams = _read_entry(algo, env_id, None, None, None, overrides)
    del saved_hyperparams["n_timesteps"]
    # Tuples become lists, other objects their repr: the form a JSON file gives back
    return json.loads(json.dumps(saved_hyperparams, sort_keys=True, default=repr))


def _check_schedule_strings(hyperparams: dict[str, Any], algo: str, env_id: str) -> None:
    """
    rl-zoo3 reads a string under a schedule key as ``lin_<initial value>``: refuse any other string before it fails
    with an unpacking error. The usual cause is YAML's ``1e-3``, a string; ``!!float 1e-3`` is a number.
    """
    for key in SCHEDULE_KEYS:
        value = hyperparams.get(key)
        if isinstance(value, str) and not re.fullmatch(r"lin_[-+0-9.eE]+", value):
            raise ValueError(
                f"{key} of the {algo} entry for {env_id} is the string {value!r}: it must be a number or a linear "
                f"schedule 'lin_<initial value>' (in YAML, write !!float 1e-3: a bare 1e-3 is read as a string)"
            )


def get_hyperparameters(
    algo: str,
    env_id: str,
    seed: int | None = None,
    conf_file: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """
    Constructor keyword arguments of ``algo`` on ``env_id`` from the zoo config, processed exactly as
    ``rl_zoo3 train`` does: ``env`` is the training VecEnv with the config's ``n_envs`` (and its wrappers,
    ``VecNormalize``, frame stacking), schedules such as ``lin_3e-4`` are callables, ``policy_kwargs`` strings are
    evaluated, action noise is built. The config's ``n_timesteps`` and callbacks are not constructor arguments:
    see ``get_n_timesteps``. Usage: ``PPO(**get_hyperparameters("ppo", "CartPole-v1", seed=0))``.

    :param algo: rl-zoo3 name of the algorithm (``"reinforce"``, ``"ppo"``, ...)
    :param env_id: Gymnasium id of the environment
    :param seed: Seed of the envs and of the model (``seed`` is in the result only when given)
    :param conf_file: Hyperparameter file (as ``-conf``); default: ``default_config_file(algo, env_id)``
    :param env_kwargs: Keyword arguments of the env constructor (override the config's ``env_kwargs``)
    :param overrides: Hyperparameters replacing the entry's, written as in the YAML file (as rl-zoo3's
        ``--hyperparams``: ``{"learning_rate": "lin_1e-3", "n_episodes": 16}``)
    :return: Keyword arguments for ``ALGOS[algo](**kwargs)``
    """
    manager, hyperparams = _prepared_manager(algo, env_id, seed, conf_file, env_kwargs, overrides)
    env = manager.create_envs(manager.n_envs, no_log=True)
    hyperparams = manager._preprocess_action_noise(hyperparams, {}, env)
    seed_kwargs = {} if seed is None else {"seed": seed}
    return {"env": env, **hyperparams, **seed_kwargs}


def get_n_timesteps(algo: str, env_id: str, conf_file: str | None = None) -> int:
    """
    :param algo: rl-zoo3 name of the algorithm
    :param env_id: Gymnasium id of the environment
    :param conf_file: Hyperparameter file, as in ``get_hyperparameters``
    :return: The training budget (``n_timesteps``) of the zoo config
    """
    manager, _ = _prepared_manager(algo, env_id, None, conf_file, None)
    return manager.n_timesteps


def make_eval_env(
    algo: str,
    env_id: str,
    n_envs: int = 1,
    seed: int | None = None,
    conf_file: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> VecEnv:
    """
    The evaluation env of ``algo`` on ``env_id``, as rl-zoo3 makes it: same wrappers as the training env,
    ``VecNormalize`` (if any) frozen and without reward normalisation (sync it with
    ``stable_baselines3.common.vec_env.sync_envs_normalization`` before evaluating).

    :param algo: rl-zoo3 name of the algorithm
    :param env_id: Gymnasium id of the environment
    :param n_envs: Number of evaluation envs
    :param seed: Seed of the envs
    :param conf_file: Hyperparameter file, as in ``get_hyperparameters``
    :param env_kwargs: Keyword arguments of the env constructor
    :param overrides: Hyperparameters replacing the entry's (e.g. ``normalize``), as in ``get_hyperparameters``
    :return: The evaluation VecEnv
    """
    manager, _ = _prepared_manager(algo, env_id, seed, conf_file, env_kwargs, overrides)
    return manager.create_envs(n_envs, eval_env=True, no_log=True)
