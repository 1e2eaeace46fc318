"""
Checkpoints of a comparison run: everything needed to continue it to its budget in another process, in one file
written atomically (the model, the ``VecNormalize`` statistics, the evaluations so far and the training time).
"""

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, unwrap_vec_normalize


@dataclass
class Checkpoint:
    """
    The state of an unfinished run.

    :param model: The model, as ``model.save`` writes it
    :param num_timesteps: Env steps the model was trained for
    :param rows: The evaluations so far (see ``sb3_reinforce.zoo.results.EVALUATION_COLUMNS``)
    :param train_time: Training wall time so far, evaluations excluded (seconds)
    :param normalization: ``VecNormalize``'s observation and return statistics, if the env has them
    """

    model: bytes
    num_timesteps: int
    rows: list[dict[str, float]]
    train_time: float
    # VecNormalize's obs_rms (a RunningMeanStd, or a dict of them for Dict observations) and ret_rms
    normalization: tuple[Any, RunningMeanStd] | None


class DamagedCheckpointError(Exception):
    """A checkpoint file that cannot be read back (e.g. a machine that died while writing it)."""


def save_checkpoint(path: Path, model: BaseAlgorithm, env: VecEnv, rows: list[dict[str, float]], train_time: float) -> None:
    """
    Write the checkpoint of a run atomically: a reader sees the previous checkpoint or this one, never a part.

    :param path: The checkpoint file
    :param model: The model being trained
    :param env: Its training env
    :param rows: The evaluations so far
    :param train_time: Training wall time so far, evaluations excluded
    """
    buffer = io.BytesIO()
    model.save(buffer)
    vec_normalize = unwrap_vec_normalize(env)
    normalization = None if vec_normalize is None else (vec_normalize.obs_rms, vec_normalize.ret_rms)
    checkpoint = Checkpoint(buffer.getvalue(), model.num_timesteps, list(rows), train_time, normalization)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial_path.write_bytes(pickle.dumps(checkpoint))
    os.replace(partial_path, path)


def load_checkpoint(path: Path) -> Checkpoint:
    """
    :param path: A checkpoint file written by ``save_checkpoint`` (it runs pickled code: only files of your own runs)
    :return: The checkpoint
    :raises DamagedCheckpointError: if the file cannot be read back
    """
    try:
        checkpoint = pickle.loads(path.read_bytes())
    except Exception as error:
        raise DamagedCheckpointError(f"{path} cannot be read back ({type(error).__name__}: {error})") from error
    if not isinstance(checkpoint, Checkpoint):
        raise DamagedCheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint")
    return checkpoint


def restore_normalization(checkpoint: Checkpoint, env: VecEnv) -> None:
    """
    Give a new training env the ``VecNormalize`` statistics of a checkpoint.

    :param checkpoint: The checkpoint of the run
    :param env: The new training env, made as the run's first one was
    """
    vec_normalize = unwrap_vec_normalize(env)
    if (vec_normalize is None) != (checkpoint.normalization is None):
        raise DamagedCheckpointError("the checkpoint and the env disagree on VecNormalize")
    if vec_normalize is not None and checkpoint.normalization is not None:
        vec_normalize.obs_rms, vec_normalize.ret_rms = checkpoint.normalization
