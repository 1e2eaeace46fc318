"""
Compare zoo-configured algorithms on one env: same seeds, same step budget, periodic deterministic evaluations.

Every finished run is written atomically to ``<output>/runs/<algo>_seed<seed>.csv``: an interrupted comparison
resumes where it stopped when run again with the same output folder.
"""

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import torch as th
from rl_zoo3.utils import ALGOS
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization
from tqdm.auto import tqdm

from sb3_reinforce.zoo.hyperparams import get_hyperparameters, get_n_timesteps, make_eval_env
from sb3_reinforce.zoo.registration import register_reinforce
from sb3_reinforce.zoo.report import plot_learning_curves, summary_markdown

EVALUATION_COLUMNS = ["algo", "seed", "timesteps", "mean_reward", "std_reward", "time_s"]


@dataclass(frozen=True)
class Settings:
    """
    What makes runs comparable: runs made with other settings cannot share an output folder.

    :param env_id: Gymnasium id of the environment
    :param n_timesteps: Training budget of every run
    :param eval_freq: Evaluate every ``eval_freq`` env steps (all training envs together)
    :param eval_episodes: Episodes per evaluation (deterministic actions)
    """

    env_id: str
    n_timesteps: int
    eval_freq: int
    eval_episodes: int


class PeriodicEvaluation(BaseCallback):
    """
    Evaluate the policy (deterministic actions) at the start of training, every ``eval_freq`` env steps
    and at the end, recording one row per evaluation. ``time_s`` is the training wall time so far,
    evaluations excluded.

    :param eval_env: The evaluation env (its ``VecNormalize`` statistics, if any, are synced before each evaluation)
    :param eval_freq: Evaluate every ``eval_freq`` env steps
    :param n_eval_episodes: Episodes per evaluation
    """

    def __init__(self, eval_env: VecEnv, eval_freq: int, n_eval_episodes: int) -> None:
        super().__init__()
        self.eval_env = eval_env
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.rows: list[dict[str, float]] = []
        self._next_eval = 0
        self._start = 0.0
        self._eval_time = 0.0

    def _evaluate(self) -> None:
        eval_start = time.perf_counter()
        sync_envs_normalization(self.training_env, self.eval_env)
        rewards, _ = evaluate_policy(
            self.model, self.eval_env, n_eval_episodes=self.n_eval_episodes, deterministic=True, return_episode_rewards=True
        )
        time_s = eval_start - self._start - self._eval_time
        self._eval_time += time.perf_counter() - eval_start
        self.rows.append(
            dict(
                timesteps=self.num_timesteps,
                mean_reward=float(np.mean(rewards)),
                std_reward=float(np.std(rewards)),
                time_s=time_s,
            )
        )
        self._next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()
        self._evaluate()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_eval:
            self._evaluate()
        return True

    def _on_training_end(self) -> None:
        if self.rows[-1]["timesteps"] < self.num_timesteps:
            self._evaluate()


def run_path(output: Path, algo: str, seed: int) -> Path:
    """
    :return: The file holding the evaluations of one finished run
    """
    return output / "runs" / f"{algo}_seed{seed}.csv"


def train_and_evaluate(algo: str, seed: int, settings: Settings, output: Path, device: str, num_threads: int) -> Path:
    """
    Train ``algo`` with its zoo hyperparameters and write its evaluations atomically (worker of ``compare``).

    :param algo: rl-zoo3 name of the algorithm
    :param seed: Seed of the model and of the envs
    :param settings: Env, budget and evaluation protocol
    :param output: Output folder of the comparison
    :param device: PyTorch device
    :param num_threads: Number of PyTorch threads
    :return: The file written (see ``run_path``)
    """
    th.set_num_threads(num_threads)
    register_reinforce()
    model = ALGOS[algo](**get_hyperparameters(algo, settings.env_id, seed=seed), device=device)
    # One evaluation env per episode, stepped together
    eval_env = make_eval_env(algo, settings.env_id, n_envs=settings.eval_episodes, seed=seed)
    callback = PeriodicEvaluation(eval_env, settings.eval_freq, settings.eval_episodes)
    try:
        model.learn(settings.n_timesteps, callback=callback)
    finally:
        model.get_env().close()
        eval_env.close()
    evaluations = pd.DataFrame(callback.rows).assign(algo=algo, seed=seed)[EVALUATION_COLUMNS]

    path = run_path(output, algo, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    evaluations.to_csv(partial_path, index=False)
    os.replace(partial_path, path)
    return path


def check_settings(output: Path, settings: Settings) -> None:
    """
    Record ``settings`` in ``<output>/settings.json``, or check they match the ones recorded there.

    :raises SystemExit: if the output folder holds runs made with other settings
    """
    settings_file = output / "settings.json"
    if settings_file.exists():
        recorded = json.loads(settings_file.read_text())
        if recorded != asdict(settings):
            raise SystemExit(f"{output} holds runs made with {recorded}, not {asdict(settings)}: choose another --output")
    else:
        output.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(json.dumps(asdict(settings), indent=2))


def run_pending(
    runs: list[tuple[str, int]], settings: Settings, output: Path, jobs: int, device: str, num_threads: int
) -> None:
    """
    Train the runs that have no result file yet, ``jobs`` at a time, with a progress bar over all runs.

    :param runs: (algo, seed) of every run of the comparison
    """
    pending = [(algo, seed) for algo, seed in runs if not run_path(output, algo, seed).exists()]
    with tqdm(total=len(runs), initial=len(runs) - len(pending), desc="runs", unit="run") as progress:
        if jobs == 1:
            for algo, seed in pending:
                progress.set_postfix_str(f"{algo} seed {seed}")
                train_and_evaluate(algo, seed, settings, output, device, num_threads)
                progress.update()
            return
        # spawn: no fork of a parent that already holds torch threads
        pool = ProcessPoolExecutor(jobs, mp_context=get_context("spawn"))
        try:
            futures = [
                pool.submit(train_and_evaluate, algo, seed, settings, output, device, num_threads) for algo, seed in pending
            ]
            for future in as_completed(futures):
                future.result()
                progress.update()
        finally:
            # On an interruption or a failed run, start no new run (the runs under way finish or die with the signal)
            pool.shutdown(cancel_futures=True)


def compare(
    env_id: str,
    algos: list[str],
    n_seeds: int,
    output: Path,
    n_timesteps: int | None = None,
    eval_freq: int | None = None,
    eval_episodes: int = 10,
    jobs: int = 1,
    device: str = "cpu",
    num_threads: int = 1,
) -> pd.DataFrame:
    """
    Train every algorithm on seeds ``0 .. n_seeds - 1`` (resuming: finished runs are kept), then write
    ``evaluations.csv``, ``summary.md`` and ``learning_curves.png`` to ``output``.

    :param env_id: Gymnasium id of the environment
    :param algos: rl-zoo3 names of the algorithms, each trained with its zoo hyperparameters
    :param n_seeds: Number of seeds per algorithm
    :param output: Output folder
    :param n_timesteps: Training budget of every run; default: the largest ``n_timesteps`` of the algorithms' configs
    :param eval_freq: Evaluate every ``eval_freq`` env steps; default: 20 evaluations per run
    :param eval_episodes: Episodes per evaluation
    :param jobs: Number of runs trained in parallel processes
    :param device: PyTorch device of the models
    :param num_threads: PyTorch threads per run
    :return: Every evaluation of every run
    """
    register_reinforce()
    n_timesteps = n_timesteps or max(get_n_timesteps(algo, env_id) for algo in algos)
    settings = Settings(env_id, n_timesteps, eval_freq or max(n_timesteps // 20, 1), eval_episodes)
    check_settings(output, settings)
    runs = [(algo, seed) for algo in algos for seed in range(n_seeds)]
    run_pending(runs, settings, output, jobs, device, num_threads)

    evaluations = pd.concat([pd.read_csv(run_path(output, algo, seed)) for algo, seed in runs], ignore_index=True)
    evaluations.to_csv(output / "evaluations.csv", index=False)
    reward_threshold = gym.spec(env_id).reward_threshold
    (output / "summary.md").write_text(summary_markdown(evaluations, settings, reward_threshold))
    plot_learning_curves(evaluations, settings, reward_threshold, output / "learning_curves.png")
    return evaluations


def main(argv: list[str] | None = None) -> None:
    """
    Command line of ``compare``.

    :param argv: Arguments; default: ``sys.argv[1:]``
    """
    parser = argparse.ArgumentParser(
        prog="python -m sb3_reinforce.compare",
        description="Train zoo-configured algorithms on the same seeds and budget, write a CSV, a table and learning curves.",
    )
    parser.add_argument("--env", default="CartPole-v1", help="Gymnasium environment id")
    parser.add_argument("--algos", nargs="+", default=["reinforce", "ppo"], help="rl-zoo3 algorithm names")
    parser.add_argument("--seeds", type=int, default=5, help="Number of seeds (0 .. seeds - 1)")
    parser.add_argument("-n", "--n-timesteps", type=int, help="Budget per run (default: largest n_timesteps of the configs)")
    parser.add_argument("--eval-freq", type=int, help="Evaluate every N env steps (default: n_timesteps / 20)")
    parser.add_argument("--eval-episodes", type=int, default=10, help="Episodes per evaluation")
    parser.add_argument("--jobs", type=int, default=1, help="Runs trained in parallel processes")
    parser.add_argument("--device", default="cpu", help="PyTorch device")
    parser.add_argument("--num-threads", type=int, default=1, help="PyTorch threads per run")
    parser.add_argument("--output", type=Path, help="Output folder (default: compare/<env>)")
    args = parser.parse_args(argv)
    output = args.output or Path("compare") / args.env
    compare(
        args.env,
        args.algos,
        args.seeds,
        output,
        n_timesteps=args.n_timesteps,
        eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes,
        jobs=args.jobs,
        device=args.device,
        num_threads=args.num_threads,
    )
    print((output / "summary.md").read_text())
