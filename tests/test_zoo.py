import shlex
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from rl_zoo3.utils import ALGOS
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv

from sb3_reinforce import REINFORCE
from sb3_reinforce.zoo import default_config_file, get_hyperparameters, get_n_timesteps, make_eval_env, register_reinforce
from sb3_reinforce.zoo.__main__ import main, with_default_config
from sb3_reinforce.zoo.sampler import sample_reinforce_params

ENV_IDS = ["CartPole-v1", "Acrobot-v1", "LunarLander-v3", "Pendulum-v1", "FrozenLake-v1"]
N_STEPS = 2000
# Two short trials: 1000 steps, one evaluation each
OPTIMIZE = "--algo reinforce --env CartPole-v1 -optimize --n-trials 2 -n 1000 --n-evaluations 1 --no-optim-plots --verbose 0"


def zoo(command: str) -> None:
    """Run the zoo command line in this process."""
    main(shlex.split(command))


def trained_config(log_folder: Path, algo: str, run_id: int = 1) -> dict:
    config_file = log_folder / algo / f"CartPole-v1_{run_id}" / "CartPole-v1" / "config.yml"
    return dict(yaml.load(config_file.read_text(), Loader=yaml.UnsafeLoader))


def journal_storage(path: Path) -> optuna.storages.JournalStorage:
    """The optuna storage rl-zoo3 opens for ``--storage <path>.log``."""
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


@pytest.fixture(scope="module")
def log_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two short REINFORCE runs and one PPO run on CartPole, trained through the zoo command line."""
    folder = tmp_path_factory.mktemp("logs")
    for algo, seed in (("reinforce", 0), ("reinforce", 1), ("ppo", 0)):
        zoo(f"train --algo {algo} --env CartPole-v1 -n {N_STEPS} -f {folder} --seed {seed} --eval-freq 500 --verbose 0")
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


def test_registration() -> None:
    register_reinforce()
    assert ALGOS["reinforce"] is REINFORCE
    assert ALGOS["ppo"] is PPO


@pytest.mark.parametrize("algo", ["reinforce", "ppo"])
def test_train_uses_packaged_config(log_folder: Path, algo: str) -> None:
    assert trained_config(log_folder, algo) == packaged_entry(algo)
    assert (log_folder / algo / "CartPole-v1_1" / "CartPole-v1.zip").is_file()
    assert (log_folder / algo / "CartPole-v1_1" / "evaluations.npz").is_file()


@pytest.mark.parametrize("algo", ["reinforce", "ppo"])
def test_enjoy(log_folder: Path, algo: str) -> None:
    zoo(f"enjoy --algo {algo} --env CartPole-v1 -f {log_folder} --no-render -n 200")


def test_plots(log_folder: Path, tmp_path: Path) -> None:
    zoo(f"plot_train --algo reinforce --env CartPole-v1 -f {log_folder}")
    zoo(f"all_plots --algos reinforce --env CartPole-v1 -f {log_folder} -o {tmp_path / 'results'} --no-display")
    assert (tmp_path / "results.pkl").is_file()
    zoo(f"plot_from_file -i {tmp_path / 'results.pkl'} -o {tmp_path / 'plot.png'} --format png")
    assert (tmp_path / "plot.png").is_file()


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

    # rl-zoo3 ignores --trial-id 0 (falsy): load trial 1
    zoo(f"train --algo reinforce -n 500 -f {tmp_path} --storage {storage} --study-name study --trial-id 1 --eval-freq -1")
    # The optimisation made the (empty) run folder 1
    config = trained_config(tmp_path, "reinforce", run_id=2)
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


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("algo_class", [REINFORCE, PPO])
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
