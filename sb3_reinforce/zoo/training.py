"""
Train and evaluate one run of a comparison: the zoo entry (and the run's overrides) trained to the budget, evaluated on
deterministic episodes at step 0, every ``eval_freq`` steps and at the end, checkpointed after every evaluation. The
same function trains a run in ``compare``'s process, in its ``--jobs`` processes and on a cluster's workers.
"""

import io
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch as th
from rl_zoo3.utils import ALGOS
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization

from sb3_reinforce.zoo.checkpoints import (
    Checkpoint,
    DamagedCheckpointError,
    load_checkpoint,
    restore_normalization,
    save_checkpoint,
)
from sb3_reinforce.zoo.hyperparams import entry_hyperparameters, get_hyperparameters, make_eval_env
from sb3_reinforce.zoo.registration import register_reinforce
from sb3_reinforce.zoo.results import Run, Settings, checkpoint_path, run_path, write_run, write_run_hyperparameters


class RunInterruptedError(Exception):
    """A run stopped by SIGTERM or SIGINT after writing its checkpoint: the same command continues it."""


# Set by SIGTERM or SIGINT in a training process: the run under way checkpoints and stops, no new run starts there
_stop_requested = False


def _request_stop(signum: int, frame: object) -> None:
    global _stop_requested
    _stop_requested = True


class PeriodicEvaluation(BaseCallback):
    """
    Evaluate the policy (deterministic actions) at the start of training, every ``eval_freq`` env steps and at the end,
    recording one row per evaluation, and checkpoint the run after each evaluation. ``time_s`` is the training wall
    time so far, evaluations excluded. Stops training (without a last evaluation) once a stop is requested.

    :param eval_env: The evaluation env (its ``VecNormalize`` statistics, if any, are synced before each evaluation)
    :param eval_freq: Evaluate every ``eval_freq`` env steps
    :param n_eval_episodes: Episodes per evaluation
    :param checkpoint_path: Where the run's checkpoint is written
    :param rows: The evaluations of a resumed run so far (none for a new run)
    :param train_time: The training time of a resumed run so far
    """

    def __init__(
        self,
        eval_env: VecEnv,
        eval_freq: int,
        n_eval_episodes: int,
        checkpoint_path: Path,
        rows: list[dict[str, float]] | None = None,
        train_time: float = 0.0,
    ) -> None:
        super().__init__()
        self.eval_env = eval_env
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.checkpoint_path = checkpoint_path
        self.rows: list[dict[str, float]] = list(rows or [])
        self._train_time_before = train_time
        self._next_eval = 0
        self._budget = 0
        self._start = 0.0
        self._eval_time = 0.0

    def train_time(self) -> float:
        """:return: The training wall time of the run so far, evaluations excluded (seconds)"""
        return self._train_time_before + time.perf_counter() - self._start - self._eval_time

    def _evaluate(self) -> None:
        eval_start = time.perf_counter()
        time_s = self.train_time()
        sync_envs_normalization(self.training_env, self.eval_env)
        rewards, _ = evaluate_policy(
            self.model, self.eval_env, n_eval_episodes=self.n_eval_episodes, deterministic=True, return_episode_rewards=True
        )
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
        save_checkpoint(self.checkpoint_path, self.model, self.training_env, self.rows, time_s)

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()
        self._budget = self.locals["total_timesteps"]
        if self.rows:
            self._next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
        else:
            self._evaluate()

    def _on_step(self) -> bool:
        if _stop_requested:
            return False
        # The budget is evaluated once, at the end of training: a result file whose last row is before the budget
        # has lost rows
        if self._next_eval <= self.num_timesteps < self._budget:
            self._evaluate()
        return True

    def _on_training_end(self) -> None:
        if not _stop_requested and self.rows[-1]["timesteps"] < self.num_timesteps:
            self._evaluate()


def train_and_evaluate(run: Run, settings: Settings, output: Path, device: str, num_threads: int) -> Path:
    """
    Train ``run.algo`` with its zoo hyperparameters (and the run's overrides) to the budget, from its checkpoint if it
    has one, and write its evaluations atomically. Called in the main thread (``compare`` and its ``--jobs``
    processes), SIGTERM or SIGINT stops it at the next env step with a checkpoint. A run whose result file exists
    by the time it starts (another ``compare`` on the same output finished it meanwhile) is not trained again.

    :param run: Algorithm, seed and overrides
    :param settings: Env, budget and evaluation protocol
    :param output: Output folder of the env's comparison
    :param device: PyTorch device
    :param num_threads: Number of PyTorch threads
    :return: The file written, or found (see ``run_path``)
    :raises RunInterruptedError: if a stop was requested (the checkpoint is written)
    """
    if _stop_requested:
        raise RunInterruptedError(f"{run.name} not started: stop requested")
    if (finished := run_path(output, run)).exists():
        return finished
    # A Dask worker runs its tasks outside the main thread, where Python allows no signal handler: there a signal ends
    # the worker process, and the scheduler runs the task again on another worker, from the run's last checkpoint
    if threading.current_thread() is not threading.main_thread():
        return _train_and_evaluate(run, settings, output, device, num_threads)
    handlers = {signum: signal.signal(signum, _request_stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _train_and_evaluate(run, settings, output, device, num_threads)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _train_and_evaluate(run: Run, settings: Settings, output: Path, device: str, num_threads: int) -> Path:
    th.set_num_threads(num_threads)
    register_reinforce()
    hyperparameters = get_hyperparameters(run.algo, settings.env_id, seed=run.seed, overrides=run.overrides)
    env = hyperparameters["env"]
    checkpoint = read_checkpoint(checkpoint_path(output, run))
    if checkpoint is None:
        model = ALGOS[run.algo](**hyperparameters, device=device)
        rows, train_time = [], 0.0
        write_run_hyperparameters(output, run, entry_hyperparameters(run.algo, settings.env_id, run.overrides))
    else:
        restore_normalization(checkpoint, env)
        model = ALGOS[run.algo].load(io.BytesIO(checkpoint.model), env=env, device=device)
        rows, train_time = checkpoint.rows, checkpoint.train_time
    eval_env = make_run_eval_env(run, settings)
    callback = PeriodicEvaluation(
        eval_env, settings.eval_freq, settings.eval_episodes, checkpoint_path(output, run), rows, train_time
    )
    try:
        model.learn(settings.n_timesteps - model.num_timesteps, callback=callback, reset_num_timesteps=False)
        if _stop_requested:
            save_checkpoint(checkpoint_path(output, run), model, env, callback.rows, callback.train_time())
            raise RunInterruptedError(f"{run.name} stopped at {model.num_timesteps:,} steps, checkpoint written")
    finally:
        env.close()
        eval_env.close()
    path = write_run(output, run, callback.rows)
    checkpoint_path(output, run).unlink()
    return path


def make_run_eval_env(run: Run, settings: Settings) -> VecEnv:
    """
    :param run: A run of the comparison
    :param settings: Its settings
    :return: Its evaluation env: one env per episode, stepped together, seeded as ``settings.first_eval_seed`` says
    """
    return make_eval_env(
        run.algo, settings.env_id, settings.eval_episodes, seed=settings.first_eval_seed(run.seed), overrides=run.overrides
    )


def read_checkpoint(path: Path) -> Checkpoint | None:
    """
    :param path: A run's checkpoint file
    :return: The checkpoint, or ``None`` if there is none or it is damaged (then it is removed and said)
    """
    if not path.exists():
        return None
    try:
        return load_checkpoint(path)
    except DamagedCheckpointError as error:
        print(f"{error}: the run starts again", file=sys.stderr)
        path.unlink()
        return None
