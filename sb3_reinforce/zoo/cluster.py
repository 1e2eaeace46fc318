"""
Comparisons on a Dask cluster (``python -m sb3_reinforce.compare --cluster ADDRESS``): every unfinished run of every
env of the command is one task of the scheduler at ``ADDRESS``, trained on a worker by the same ``train_and_evaluate``
as a local run, so that it gives the same evaluations.

The workers write the result files and checkpoints under ``--output``: every worker must see that folder at the same
path (a shared file system). The scheduler runs a task whose worker died again on another worker, and the run goes on
from the checkpoint of its last evaluation; a run whose workers died more than ``distributed.scheduler.allowed-failures``
times (3 by default) fails with ``KilledWorker``. Needs the ``cluster`` extra: ``pip install "sb3_reinforce[cluster]"``.
"""

import signal
import sys
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from sb3_reinforce.zoo.results import Run, Settings, checkpoint_path, run_path
from sb3_reinforce.zoo.training import RunInterruptedError, train_and_evaluate

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class ClusterRun:
    """
    One run of a comparison, as a task of the cluster.

    :param run: Algorithm, seed and overrides
    :param settings: Env, budget and evaluation protocol
    :param output: Output folder of the env's comparison: an absolute path, the same on every worker
    """

    run: Run
    settings: Settings
    output: Path

    @property
    def name(self) -> str:
        """The env and the run, e.g. ``CartPole-v1/reinforce_seed0``."""
        return f"{self.settings.env_id}/{self.run.name}"


def connect(address: str) -> "Client":
    """
    :param address: Address of a Dask scheduler, e.g. ``tcp://10.0.0.5:8786``
    :return: A client of the scheduler
    :raises SystemExit: if Dask distributed is not installed or the scheduler cannot be reached
    """
    try:
        from distributed import Client
    except ImportError:
        raise SystemExit('--cluster needs Dask distributed: pip install "sb3_reinforce[cluster]"') from None
    try:
        return Client(address)
    except (OSError, ValueError) as error:
        raise SystemExit(f"cannot reach the Dask scheduler at {address}: {error}") from None


def train_on_worker(task: ClusterRun, device: str, num_threads: int) -> Path:
    """
    The task of a run: train and evaluate it on a worker (see ``train_and_evaluate``).

    :param task: The run
    :param device: PyTorch device
    :param num_threads: Number of PyTorch threads
    :return: The result file of the run
    """
    path = run_path(task.output, task.run)
    # The task ran before on a worker that died after writing the result: the run is done
    if path.exists():
        checkpoint_path(task.output, task.run).unlink(missing_ok=True)
        return path
    return train_and_evaluate(task.run, task.settings, task.output, device, num_threads)


def run_on_cluster(client: "Client", tasks: list[ClusterRun], device: str, num_threads: int) -> list[ClusterRun]:
    """
    Submit every run to the cluster and wait for all of them, with a progress bar; name each failed run with its
    exception as it fails. SIGTERM or SIGINT cancels the runs not started yet.

    :param client: A client of the cluster's scheduler
    :param tasks: The runs
    :param device: PyTorch device of the models
    :param num_threads: PyTorch threads per run
    :return: The runs that failed
    :raises RunInterruptedError: if the driver was stopped by a signal
    """
    from distributed import as_completed

    # pure=False and a unique key: a run submitted twice is trained twice, never taken from another client's result
    futures = {
        client.submit(train_on_worker, task, device, num_threads, key=f"{task.name}-{uuid.uuid4().hex}", pure=False): task
        for task in tasks
    }
    failed = []
    # SIGTERM reaches the driver alone: turn it into the KeyboardInterrupt of a Ctrl-C
    handler = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with tqdm(total=len(tasks), desc="cluster", unit="run") as progress:
            for future in as_completed(futures):
                task = futures[future]
                try:
                    future.result()
                except Exception as error:
                    failed.append(task)
                    progress.write(f"{task.name} failed: {''.join(traceback.format_exception(error))}", file=sys.stderr)
                progress.set_postfix_str(task.name)
                progress.update()
    except KeyboardInterrupt:
        client.cancel(list(futures))
        raise RunInterruptedError(
            "stopped by a signal: the runs not started are cancelled; the runs under way go on to their end on their "
            "workers (a Dask worker cannot stop a task) and write their result files"
        ) from None
    finally:
        signal.signal(signal.SIGTERM, handler)
    return failed
