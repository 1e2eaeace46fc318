"""
SB3's ``SubprocVecEnv`` whose workers report the env's exceptions instead of dying of them.

In SB3's ``SubprocVecEnv`` an exception in a worker's ``env.step()`` or ``env.reset()`` ends the worker process: the
main process gets a bare ``EOFError`` that names neither the env nor the exception, and ``close()`` then waits forever
for an answer that the healthy workers have already given. Here each env runs inside ``ErrorReportingEnv``: the
exception is caught in the worker, the step ends as a terminated episode carrying the traceback in its info, and
``step_wait()`` / ``reset()`` raise ``VecEnvWorkerError`` naming the env index and the worker's traceback, after every
worker has answered, so that ``close()`` returns. A worker that dies without a word (killed by a signal or by the OOM
killer) is named with its exit code, and ``close()`` still returns.
"""

import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, SupportsFloat

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import SubprocVecEnv as SB3SubprocVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from stable_baselines3.common.vec_env.subproc_vec_env import _stack_obs

# The info key under which a worker sends the traceback of its env's exception
WORKER_ERROR_KEY = "worker_error"
# Seconds that close() waits for a worker to exit before terminating it
CLOSE_TIMEOUT = 10.0


class VecEnvWorkerError(RuntimeError):
    """An env of a ``SubprocVecEnv`` raised an exception in its worker, or its worker process died."""


class ErrorReportingEnv(gym.Wrapper):
    """
    Catch the env's exceptions in ``step()`` and ``reset()``: the step ends as a terminated episode whose info holds the
    traceback under ``WORKER_ERROR_KEY``, and the env is not called again (every later step or reset reports the same
    traceback).

    :param env: The env run by a worker
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.error: str | None = None
        self.last_observation: Any = None

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self.error is None:
            try:
                observation, reward, terminated, truncated, info = self.env.step(action)
                self.last_observation = observation
                return observation, reward, terminated, truncated, info
            except Exception:
                self.error = traceback.format_exc()
        return self._placeholder_observation(), 0.0, True, False, {WORKER_ERROR_KEY: self.error}

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if self.error is None:
            try:
                observation, info = self.env.reset(**kwargs)
                self.last_observation = observation
                return observation, info
            except Exception:
                self.error = traceback.format_exc()
        return self._placeholder_observation(), {WORKER_ERROR_KEY: self.error}

    def _placeholder_observation(self) -> Any:
        """An observation of the right space for the failed step (the main process raises before using it)."""
        return self.observation_space.sample() if self.last_observation is None else self.last_observation


class _ErrorReportingEnvFn:
    """Build the worker's env inside ``ErrorReportingEnv`` (a module-level class: the forkserver pickles it by reference)."""

    def __init__(self, env_fn: Callable[[], gym.Env]):
        self.env_fn = env_fn

    def __call__(self) -> gym.Env:
        return ErrorReportingEnv(self.env_fn())


class SubprocVecEnv(SB3SubprocVecEnv):
    """
    SB3's ``SubprocVecEnv`` (same arguments, stepping and seeding) in which an exception of an env raises
    ``VecEnvWorkerError`` with the worker's traceback, and ``close()`` returns after a failure. After a failure the
    VecEnv refuses to step: close it and build a new one.

    :param env_fns: Functions that build the envs, one per worker process
    :param start_method: The multiprocessing start method (SB3's default: forkserver where available, else spawn)
    """

    def __init__(self, env_fns: list[Callable[[], gym.Env]], start_method: str | None = None):
        self.failed = False
        super().__init__([_ErrorReportingEnvFn(env_fn) for env_fn in env_fns], start_method)

    def step_async(self, actions: np.ndarray) -> None:
        if self.failed:
            raise VecEnvWorkerError("A worker of this SubprocVecEnv failed earlier: close it and build a new one.")
        try:
            super().step_async(actions)
        except (BrokenPipeError, ConnectionResetError) as error:
            self._fail([(index, self._death(index)) for index in self._dead_workers()], error)

    def step_wait(self) -> VecEnvStepReturn:
        # Every worker's answer is read before raising, so that none is left in a pipe for close() to wait on
        answers: list[Any] = []
        failures = []
        for index, remote in enumerate(self.remotes):
            try:
                answers.append(remote.recv())
            except (EOFError, ConnectionResetError):
                answers.append(None)
                failures.append((index, self._death(index)))
        self.waiting = False
        failures += [(index, answer[3][WORKER_ERROR_KEY]) for index, answer in enumerate(answers) if _reported(answer)]
        if failures:
            self._fail(sorted(failures))
        observations, rewards, dones, infos, reset_infos = zip(*answers, strict=True)
        self.reset_infos = list(reset_infos)
        return _stack_obs(observations, self.observation_space), np.stack(rewards), np.stack(dones), list(infos)

    def reset(self) -> VecEnvObs:
        try:
            observations = super().reset()
        except (EOFError, ConnectionResetError, BrokenPipeError) as error:
            self._fail([(index, self._death(index)) for index in self._dead_workers()], error)
        failures = [(index, info[WORKER_ERROR_KEY]) for index, info in enumerate(self.reset_infos) if WORKER_ERROR_KEY in info]
        if failures:
            self._fail(failures)
        return observations

    def close(self) -> None:
        if self.closed or not self.failed:
            super().close()
            return
        # After a failure: no answer is awaited; the live workers are asked to close, the stuck ones terminated
        for remote, process in zip(self.remotes, self.processes, strict=True):
            if process.is_alive():
                try:
                    remote.send(("close", None))
                except (BrokenPipeError, ConnectionResetError):
                    pass
        for process in self.processes:
            process.join(CLOSE_TIMEOUT)
            if process.is_alive():
                process.terminate()
                process.join()
        for remote in self.remotes:
            remote.close()
        self.closed = True

    def _dead_workers(self) -> list[int]:
        return [index for index, process in enumerate(self.processes) if not process.is_alive()]

    def _death(self, index: int) -> str:
        """What is known of a worker that ended without answering: its exit code (negative: the signal)."""
        process = self.processes[index]
        process.join(1.0)
        return f"its worker process ended without an answer (exit code {process.exitcode})"

    def _fail(self, failures: Sequence[tuple[int, str]], cause: BaseException | None = None) -> NoReturn:
        """Mark this VecEnv failed and raise the error naming each failed env."""
        self.failed = True
        described = "\n".join(f"env {index}: {failure}" for index, failure in failures) or "a worker process ended"
        raise VecEnvWorkerError(f"SubprocVecEnv: {len(failures)} env(s) failed in their worker\n{described}") from cause


def _reported(answer: Any) -> bool:
    """Whether a step's answer carries an exception reported by ``ErrorReportingEnv``."""
    return answer is not None and WORKER_ERROR_KEY in answer[3]
