import argparse
import os
import pickle
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch as th
import yaml
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
from rl_zoo3.train import train as zoo3_train
from rl_zoo3.utils import ALGOS
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv

from sb3_reinforce import REINFORCE
from sb3_reinforce.common import SubprocVecEnv
from sb3_reinforce.zoo import default_config_file, get_hyperparameters, get_n_timesteps, make_eval_env, register_reinforce
from sb3_reinforce.zoo.__main__ import COMMANDS, main, with_default_config, with_default_eval_freq
from sb3_reinforce.zoo.plots import run_with_args
from sb3_reinforce.zoo.sampler import convert_reinforce_params, sample_reinforce_params

ENV_IDS = ["CartPole-v1", "Acrobot-v1", "LunarLander-v3", "Pendulum-v1", "FrozenLake-v1"]
N_STEPS = 2000
# Two short trials: 1000 steps, one evaluation each
OPTIMIZE = "--algo reinforce --env CartPole-v1 -optimize --n-trials 2 -n 1000 --n-evaluations 1 --no-optim-plots --verbose 0"


PNG_SIGNATURE = b"\x89PNG"


def zoo(command: str) -> None:
    """Run the zoo command line in this process."""
    main(shlex.split(command))


def zoo_exit_code(command: str) -> int | str | None:
    """Run the zoo command line in this process, which must exit (argparse's help and errors)."""
    with pytest.raises(SystemExit) as exit_info:
        zoo(command)
    return exit_info.value.code


def run_folders(log_folder: Path, algo: str) -> list[str]:
    return sorted(path.name for path in (log_folder / algo).glob("CartPole-v1_*") if path.is_dir())


def trained_config(log_folder: Path, algo: str, run_id: int = 1) -> dict:
    config_file = log_folder / algo / f"CartPole-v1_{run_id}" / "CartPole-v1" / "config.yml"
    return dict(yaml.load(config_file.read_text(), Loader=yaml.UnsafeLoader))


def journal_storage(path: Path) -> optuna.storages.JournalStorage:
    """The optuna storage rl-zoo3 opens for ``--storage <path>.log``."""
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


@pytest.fixture(scope="module")
def log_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """
    Two short REINFORCE runs (default evaluation interval) and one PPO run (--eval-freq 500) on CartPole,
    trained through the zoo command line.
    """
    folder = tmp_path_factory.mktemp("logs")
    for algo, seed, eval_freq in (("reinforce", 0, ""), ("reinforce", 1, ""), ("ppo", 0, "--eval-freq 500")):
        zoo(f"train --algo {algo} --env CartPole-v1 -n {N_STEPS} -f {folder} --seed {seed} {eval_freq} --verbose 0")
    return folder


def packaged_entry(algo: str, env_id: str = "CartPole-v1") -> dict:
    return yaml.safe_load(Path(default_config_file(algo, env_id)).read_text())[env_id]


@pytest.mark.parametrize("algo", ["reinforce", "ppo"])
def test_packaged_configs(algo: str) -> None:
    config_file = default_config_file(algo, "CartPole-v1")
    assert config_file is not None
    hyperparams = yaml.safe_load(Path(config_file).read_text())
    assert set(ENV_IDS) <= set(hyperparams)
    for env_hyperparams in hyperparams.values():
        # A plain 1e-3 in YAML reads as a string: floats must be written with !!float
        assert isinstance(env_hyperparams["n_timesteps"], float)
        learning_rate = env_hyperparams.get("learning_rate", 0.0)
        assert isinstance(learning_rate, float) or learning_rate.startswith("lin_")


def test_envs_without_packaged_entry_fall_back_to_rl_zoo3() -> None:
    # No packaged a2c file; the packaged ppo file has no MountainCar-v0 entry; reinforce has a default entry
    assert default_config_file("a2c", "CartPole-v1") is None
    assert default_config_file("ppo", "MountainCar-v0") is None
    assert default_config_file("reinforce", "MountainCar-v0") == default_config_file("reinforce", "CartPole-v1")
    assert with_default_config(["--algo", "a2c"]) == ["--algo", "a2c"]
    assert with_default_config(["--algo", "ppo", "--env", "MountainCar-v0"]) == ["--algo", "ppo", "--env", "MountainCar-v0"]


def test_default_config_is_the_packaged_one() -> None:
    config_file = default_config_file("reinforce", "CartPole-v1")
    assert with_default_config(["--algo", "reinforce"]) == ["--algo", "reinforce", "--conf-file", config_file]
    # rl-zoo3's defaults: --algo ppo --env CartPole-v1
    assert with_default_config([]) == ["--conf-file", default_config_file("ppo", "CartPole-v1")]
    for user_config in (["-conf", "my.yml"], ["--conf-file", "my.yml"], ["--conf-file=my.yml"]):
        assert with_default_config(["--algo", "reinforce", *user_config]) == ["--algo", "reinforce", *user_config]


def test_registration(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    for registry in (ALGOS, HYPERPARAMS_SAMPLER, HYPERPARAMS_CONVERTER):
        monkeypatch.delitem(registry, "reinforce", raising=False)
    # rl-zoo3's parser alone refuses --algo reinforce (argparse checks it before it reaches --help)
    with pytest.raises(SystemExit) as exit_info:
        run_with_args(zoo3_train, "train", ["--algo", "reinforce", "--help"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'reinforce'" in capsys.readouterr().err
    # The zoo command line registers it before rl-zoo3 builds its parsers
    for command in ("train", "enjoy"):
        assert zoo_exit_code(f"{command} --algo reinforce --help") == 0
    assert ALGOS["reinforce"] is REINFORCE
    assert HYPERPARAMS_SAMPLER["reinforce"] is sample_reinforce_params
    assert HYPERPARAMS_CONVERTER["reinforce"] is convert_reinforce_params
    register_reinforce()
    assert ALGOS["reinforce"] is REINFORCE


def test_subproc_vec_env_is_the_projects() -> None:
    # --vec-env subproc: the SubprocVecEnv that names a worker's exception (tests/test_sb3_cases.py)
    register_reinforce()
    manager = ExperimentManager(argparse.Namespace(), "reinforce", "CartPole-v1", os.devnull, vec_env_type="subproc")
    assert manager.vec_env_class is SubprocVecEnv


def test_help(capsys: pytest.CaptureFixture) -> None:
    assert set(COMMANDS) == {"train", "enjoy", "record_video", "plot_train", "plot_from_file", "all_plots"}
    for option in ("--help", "-h"):
        assert zoo_exit_code(option) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: python -m sb3_reinforce.zoo")
        # One line each
        assert all(re.search(rf"^  {command}  +\S", out, re.MULTILINE) for command in COMMANDS)
    # No command: the same listing, on stderr, exit code 2 (as argparse)
    assert zoo_exit_code("") == 2
    assert capsys.readouterr().err == out
    assert zoo_exit_code("plots --algo ppo") == 2
    assert "error: unknown command 'plots' (choose from train, enjoy" in capsys.readouterr().err
    # rl-zoo3's help of a command, then what this program changes
    assert zoo_exit_code("train --help") == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m sb3_reinforce.zoo train")
    assert "--num-threads         1 (one torch thread" in out
    assert zoo_exit_code("plot_train -h") == 0
    assert "-o OUTPUT, --output OUTPUT" in capsys.readouterr().out


@pytest.fixture
def torch_threads() -> Iterator[None]:
    """Torch's thread count set to 2 during the test, back to conftest's 1 after it."""
    th.set_num_threads(2)
    yield
    th.set_num_threads(1)


@pytest.mark.usefixtures("torch_threads")
@pytest.mark.parametrize("num_threads", [None, 2])
def test_train_uses_one_thread_by_default(tmp_path: Path, capsys: pytest.CaptureFixture, num_threads: int | None) -> None:
    option = "" if num_threads is None else f"--num-threads {num_threads}"
    zoo(f"train --algo reinforce -n 100 -f {tmp_path} --seed 0 --eval-freq -1 --verbose 0 {option}")
    assert th.get_num_threads() == (num_threads or 1)
    assert f"Torch threads: {num_threads or 1} (--num-threads N to change)" in capsys.readouterr().out
    assert run_folders(tmp_path, "reinforce") == ["CartPole-v1_1"]


def test_default_eval_freq() -> None:
    # Five evaluations when -n is under 5 times rl-zoo3's interval (25,000 steps)
    assert with_default_eval_freq(["-n", "20000"]) == ["-n", "20000", "--eval-freq", "4000"]
    for train_args in (["-n", "20000", "--eval-freq", "-1"], ["-n", "200000"], ["--algo", "reinforce"]):
        assert with_default_eval_freq(train_args) == train_args


def test_failed_train_leaves_no_run_folder(log_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shutil.copytree(log_folder / "reinforce", tmp_path / "reinforce")
    # REINFORCE refuses n_episodes=0 after rl-zoo3 created the run folder
    with pytest.raises(ValueError, match="n_episodes must be an int >= 1"):
        zoo(f"train --algo reinforce -n {N_STEPS} -f {tmp_path} --hyperparams n_episodes:0 --verbose 0")
    assert f"Removed {tmp_path}/reinforce/CartPole-v1_3: the run saved no model" in capsys.readouterr().out
    assert run_folders(tmp_path, "reinforce") == ["CartPole-v1_1", "CartPole-v1_2"]
    zoo(f"enjoy --algo reinforce --env CartPole-v1 -f {tmp_path} --no-render -n 10")
    assert f"Loading {tmp_path}/reinforce/CartPole-v1_2/CartPole-v1.zip" in capsys.readouterr().out


# REINFORCE: 5 evaluations by default (rl-zoo3 evaluates every 25,000 steps: not once in N_STEPS); PPO: --eval-freq 500
@pytest.mark.parametrize("algo, n_evaluations", [("reinforce", 5), ("ppo", N_STEPS // 500)])
def test_train_uses_packaged_config(log_folder: Path, algo: str, n_evaluations: int) -> None:
    assert trained_config(log_folder, algo) == packaged_entry(algo)
    assert (log_folder / algo / "CartPole-v1_1" / "CartPole-v1.zip").is_file()
    assert len(np.load(log_folder / algo / "CartPole-v1_1" / "evaluations.npz")["timesteps"]) == n_evaluations


def episode_rewards(model_path: Path, algo: str, n_steps: int) -> list[float]:
    """The rewards of the episodes that the model's deterministic policy completes in n_steps on CartPole (seed 0)."""
    model = ALGOS[algo].load(model_path)
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    observation = env.reset()
    rewards, episode_reward = [], 0.0
    for _ in range(n_steps):
        action, _ = model.predict(observation, deterministic=True)
        observation, reward, done, _ = env.step(action)
        episode_reward += float(reward[0])
        if done[0]:
            rewards.append(episode_reward)
            episode_reward = 0.0
    return rewards


@pytest.mark.parametrize("algo", ["reinforce", "ppo"])
def test_enjoy(log_folder: Path, algo: str, capsys: pytest.CaptureFixture) -> None:
    zoo(f"enjoy --algo {algo} --env CartPole-v1 -f {log_folder} --no-render -n 300")
    out = capsys.readouterr().out
    # The latest run's model, playing the episodes that it plays on the same seed
    model_path = log_folder / algo / run_folders(log_folder, algo)[-1] / "CartPole-v1.zip"
    assert f"Loading {model_path}" in out
    printed_rewards = [float(reward) for reward in re.findall(r"^Episode Reward: (\S+)$", out, re.MULTILINE)]
    assert printed_rewards
    assert printed_rewards == episode_rewards(model_path, algo, n_steps=300)


def test_plot_train(log_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # Default file: <exp-folder>/<algo>/<env>_<y-axis>.png
    zoo(f"plot_train -a reinforce -e CartPole-v1 -f {log_folder} -w 10")
    default_output = log_folder / "reinforce" / "CartPole-v1_reward.png"
    assert default_output.read_bytes().startswith(PNG_SIGNATURE)
    assert capsys.readouterr().out == f"Saved the plot to {default_output}\n"
    # One run; a window longer than the runs: an empty plot, and a warning that says why
    zoo(f"plot_train -a ppo -e CartPole-v1 -f {log_folder} -w 1000 -y length --output {tmp_path / 'ppo.png'}")
    assert (tmp_path / "ppo.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "the plot is empty: no run of CartPole-v1" in capsys.readouterr().err


@pytest.mark.parametrize("algo, n_runs", [("reinforce", 2), ("ppo", 1)])
def test_all_plots_then_plot_from_file(log_folder: Path, tmp_path: Path, algo: str, n_runs: int) -> None:
    assert len(run_folders(log_folder, algo)) == n_runs
    zoo(f"all_plots -a {algo} -e CartPole-v1 -f {log_folder} -o {tmp_path / 'results'}")
    assert (tmp_path / "results_CartPole-v1.png").read_bytes().startswith(PNG_SIGNATURE)
    with (tmp_path / "results.pkl").open("rb") as file:
        results = pickle.load(file)
    (scores,) = results["CartPole-v1"].values()
    assert scores["last_evals"].shape == (n_runs,)
    # -o's suffix gives the format (rl-zoo3: svg whatever the suffix)
    zoo(f"plot_from_file -i {tmp_path / 'results.pkl'} -o {tmp_path / 'scores.png'}")
    assert (tmp_path / "scores.png").read_bytes().startswith(PNG_SIGNATURE)


def test_all_plots_names_runs_without_evaluations(log_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shutil.copytree(log_folder / "ppo", tmp_path / "ppo", ignore=shutil.ignore_patterns("evaluations.npz"))
    zoo(f"all_plots -a ppo -e CartPole-v1 -f {tmp_path}")
    captured = capsys.readouterr()
    assert "0.0 +/- 0.0" in captured.out
    assert f"no result for ppo on CartPole-v1 in {tmp_path}" in captured.err
    assert f"evaluations found: {tmp_path}/ppo/CartPole-v1_1: 0" in captured.err


def test_record_video(log_folder: Path, tmp_path: Path) -> None:
    pytest.importorskip("moviepy")
    pytest.importorskip("pygame")
    zoo(f"record_video --algo reinforce --env CartPole-v1 -f {log_folder} -n 50 -o {tmp_path}")
    assert list(tmp_path.glob("*.mp4"))


def test_optimize_then_train_from_trial(tmp_path: Path) -> None:
    storage = tmp_path / "study.log"
    zoo(f"train {OPTIMIZE} -f {tmp_path} --storage {storage} --study-name study --seed 0")
    study = optuna.load_study(study_name="study", storage=journal_storage(storage))
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2

    # rl-zoo3 creates a run folder for the optimisation and saves nothing there: removed
    assert run_folders(tmp_path, "reinforce") == []

    # rl-zoo3 ignores --trial-id 0 (falsy): load trial 1
    zoo(f"train --algo reinforce -n 500 -f {tmp_path} --storage {storage} --study-name study --trial-id 1 --eval-freq -1")
    config = trained_config(tmp_path, "reinforce")
    assert config["n_episodes"] == study.trials[1].params["n_episodes"]
    assert config["gamma"] == pytest.approx(1 - study.trials[1].params["one_minus_gamma"])


@pytest.mark.parametrize("clip_gradients, limit_kl", [(True, False), (False, True)])
@pytest.mark.parametrize("baseline", ["mean", "value"])
def test_sampled_params_build_a_model(clip_gradients: bool, limit_kl: bool, baseline: str) -> None:
    params = dict(
        n_episodes=4,
        one_minus_gamma=0.01,
        learning_rate=1e-3,
        baseline=baseline,
        gamma_weighting=False,
        normalize_advantage=True,
        ent_coef=1e-3,
        clip_gradients=clip_gradients,
        limit_kl=limit_kl,
        net_arch="tiny",
        activation_fn="tanh",
    )
    if clip_gradients:
        params["max_grad_norm"] = 0.5
    if limit_kl:
        params["target_kl"] = 0.02
    if baseline == "value":
        # Sampled with the value baseline only: REINFORCE rejects them with the others
        params["bootstrap_truncated"] = True
        params["n_critic_updates"] = 5
    kwargs = sample_reinforce_params(optuna.trial.FixedTrial(params), n_actions=0, n_envs=1, additional_args={})
    assert kwargs["max_grad_norm"] == (0.5 if clip_gradients else None)
    assert kwargs["target_kl"] == (0.02 if limit_kl else None)
    assert kwargs["gamma"] == pytest.approx(0.99)
    REINFORCE("MlpPolicy", "CartPole-v1", **kwargs).learn(100)


@pytest.mark.slow
def test_distributed_optimize(tmp_path: Path) -> None:
    """Two worker processes share one journal file: each runs its trials, the study holds them all."""
    storage = tmp_path / "study.log"
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                *shlex.split(f"-m sb3_reinforce.zoo train {OPTIMIZE} --storage {storage} --study-name shared"),
                # Different seeds: two workers with the same seed would sample the same random first trials
                *shlex.split(f"--seed {seed} -f {tmp_path / f'worker{seed}'}"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr
    study = optuna.load_study(study_name="shared", storage=journal_storage(storage))
    assert len(study.trials) == 4
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)


@pytest.mark.parametrize("algo_class", [REINFORCE, PPO])
def test_get_hyperparameters(algo_class: type) -> None:
    algo = algo_class.__name__.lower()
    kwargs = get_hyperparameters(algo, "CartPole-v1", seed=0)
    packaged = packaged_entry(algo)
    assert isinstance(kwargs["env"], VecEnv)
    assert kwargs["env"].num_envs == packaged["n_envs"]
    assert "n_envs" not in kwargs and "n_timesteps" not in kwargs
    assert callable(kwargs["learning_rate"])
    assert isinstance(kwargs.get("policy_kwargs", {}), dict)
    model = algo_class(**kwargs)
    model.learn(300)
    assert model.seed == 0
    assert get_n_timesteps(algo, "CartPole-v1") == packaged["n_timesteps"]
    assert make_eval_env(algo, "CartPole-v1").num_envs == 1


@pytest.mark.parametrize(
    "algo_class, env_id",
    [
        # PPO's LunarLander entry collects 16 x 1024 steps before its first update
        pytest.param(algo_class, env_id, marks=pytest.mark.slow)
        if (algo_class, env_id) == (PPO, "LunarLander-v3")
        else (algo_class, env_id)
        for algo_class in (REINFORCE, PPO)
        for env_id in ENV_IDS
    ],
)
def test_every_packaged_entry_trains(algo_class: type, env_id: str) -> None:
    # LunarLander-v3 needs gymnasium[box2d], part of the zoo extra
    model = algo_class(**get_hyperparameters(algo_class.__name__.lower(), env_id, seed=0))
    model.learn(200)
    assert model.num_timesteps >= 200


def test_get_hyperparameters_schedule() -> None:
    # PPO's CartPole entry uses linear schedules (lin_0.001)
    learning_rate = get_hyperparameters("ppo", "CartPole-v1")["learning_rate"]
    assert learning_rate(1.0) == pytest.approx(1e-3)
    assert learning_rate(0.5) == pytest.approx(5e-4)
