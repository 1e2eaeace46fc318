"""
compare --cluster: a real Dask scheduler and two worker processes on the loopback interface, started by the tests. A
run trained on the cluster gives the evaluations of the same run trained locally, and a run whose worker is killed
(SIGKILL) goes on from its checkpoint on the other worker, with no evaluation lost or counted twice.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dask
import pandas as pd
import pytest
from distributed import Client

from sb3_reinforce.zoo.checkpoints import load_checkpoint
from sb3_reinforce.zoo.cluster import connect
from sb3_reinforce.zoo.compare import main
from sb3_reinforce.zoo.results import Run, checkpoint_path, run_path
from tests.test_interruptions import BUDGET, EVAL_FREQ, check_complete_run, wait_for_checkpoint

# Seconds any wait on the cluster may take before the test fails
TIMEOUT = 120
# `dask scheduler` and `dask worker`, on the loopback interface only and with no dashboard: nothing listens elsewhere
SCHEDULER = "-m distributed.cli.dask_scheduler --host 127.0.0.1 --port 0 --no-dashboard"
WORKER = "-m distributed.cli.dask_worker --host 127.0.0.1 --nworkers 1 --nthreads 1 --no-dashboard"


@dataclass
class LocalCluster:
    """
    A scheduler and two workers (each a nanny process and its worker process), each in a process group of its own.

    :param address: The scheduler's address
    :param client: A client of the scheduler, for the tests' questions (which worker runs what)
    """

    address: str
    client: Client


def start(command: list[str], log: Path) -> subprocess.Popen:
    """Start ``command`` in a process group of its own, its output to ``log``."""
    with log.open("w") as output:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL if it is still there after 30 s."""
    for signum, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    processes = [
        start(
            [sys.executable, *shlex.split(f"{SCHEDULER} --scheduler-file {scheduler_file}")],
            folder / "scheduler.log",
        )
    ]
    client = None
    try:
        deadline = time.monotonic() + TIMEOUT
        while not scheduler_file.exists():
            assert processes[0].poll() is None, (folder / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        for index in range(2):
            command = f"{WORKER} --scheduler-file {scheduler_file} --local-directory {folder / f'worker{index}'}"
            processes.append(start([sys.executable, *shlex.split(command)], folder / f"worker{index}.log"))
        client = Client(scheduler_file=str(scheduler_file), timeout=TIMEOUT)
        client.wait_for_workers(2, timeout=TIMEOUT)
        yield LocalCluster(json.loads(scheduler_file.read_text())["address"], client)
    finally:
        if client is not None:
            client.close()
        for process in reversed(processes):
            stop(process)


def compare_command(
    output: Path, budget: int, eval_freq: int, seeds: str, *options: str, envs: str = "CartPole-v1"
) -> list[str]:
    return [
        sys.executable,
        *shlex.split(f"-m sb3_reinforce.compare --env {envs} --algos reinforce --seeds {seeds} -n {budget}"),
        *shlex.split(f"--eval-freq {eval_freq} --eval-episodes 2 --output {output}"),
        *options,
    ]


def evaluations(output: Path, run: Run) -> pd.DataFrame:
    """The evaluations of a finished run, training wall time left out."""
    return pd.read_csv(run_path(output, run), keep_default_na=False).drop(columns="time_s")


def running_on(client: Client, run: Run) -> str | None:
    """:return: The address of the worker that runs ``run``, if one does"""
    for address, keys in client.processing().items():
        if any(f"/{run.name}-" in str(key) for key in keys):
            return address
    return None


@pytest.mark.slow
def test_cluster_runs_give_the_local_evaluations(cluster: LocalCluster, tmp_path: Path) -> None:
    cluster.client.wait_for_workers(2, timeout=TIMEOUT)
    # Two envs in one command: their four runs are submitted together
    for output, options in ((tmp_path / "cluster", ["--cluster", cluster.address]), (tmp_path / "local", ["--jobs", "1"])):
        command = compare_command(output, 3000, 1000, "0-1", *options, envs="CartPole-v1 Acrobot-v1")
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        if "--cluster" in options:
            assert f"Dask scheduler {cluster.address}: 2 workers, 2 threads" in result.stdout
    for env_id in ("CartPole-v1", "Acrobot-v1"):
        for seed in (0, 1):
            cluster_rows = evaluations(tmp_path / "cluster" / env_id, Run("reinforce", seed))
            # At the start, every 1000 steps and at the end (the batch of episodes that crosses the budget)
            assert cluster_rows["timesteps"].tolist()[:3] == [0, 1000, 2000] and cluster_rows["timesteps"].iloc[-1] >= 3000
            local_rows = evaluations(tmp_path / "local" / env_id, Run("reinforce", seed))
            pd.testing.assert_frame_equal(cluster_rows, local_rows, check_exact=True)
        assert (tmp_path / "cluster" / env_id / "summary.md").exists()


@pytest.mark.slow
def test_killed_worker_run_goes_on_from_its_checkpoint_on_the_other_worker(cluster: LocalCluster, tmp_path: Path) -> None:
    output = tmp_path / "cluster"
    run = Run("reinforce", 0)
    checkpoint = checkpoint_path(output / "CartPole-v1", run)
    # A killed worker process is restarted by its nanny: both workers are there at the start of each test
    cluster.client.wait_for_workers(2, timeout=TIMEOUT)
    workers = list(cluster.client.nthreads())
    driver = subprocess.Popen(
        compare_command(output, BUDGET, EVAL_FREQ, "0", "--cluster", cluster.address),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_checkpoint(checkpoint, driver)
        killed = running_on(cluster.client, run)
        assert killed in workers
        pid = cluster.client.run(os.getpid, workers=[killed])[killed]
        os.kill(pid, signal.SIGKILL)
        # The dead worker writes nothing more; the run goes on from here
        rows_before = load_checkpoint(checkpoint).rows
        assert len(rows_before) >= 2
        deadline = time.monotonic() + TIMEOUT
        while (address := running_on(cluster.client, run)) in (None, killed):
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "the run did not move to another worker"
            time.sleep(0.1)
        assert address == next(worker for worker in workers if worker != killed)
        _, stderr = driver.communicate(timeout=600)
        assert driver.returncode == 0, stderr
    finally:
        if driver.poll() is None:
            driver.kill()
    check_complete_run(run_path(output / "CartPole-v1", run), rows_before)
    assert not checkpoint.exists()


def test_cluster_takes_no_jobs(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--env", "CartPole-v1", "--algos", "reinforce", "--cluster", "tcp://127.0.0.1:8786", "--jobs", "2"])
    assert exit_info.value.code == 2
    assert "--cluster trains the runs on the cluster's workers: it takes no --jobs" in capsys.readouterr().err


def test_cluster_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules: the import fails as if distributed was not installed
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(SystemExit, match=r'pip install "sb3_reinforce\[cluster\]"'):
        connect("tcp://127.0.0.1:8786")


def test_unreachable_scheduler_is_named() -> None:
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), pytest.raises(SystemExit) as exit_info:
        # Port 1: nothing listens there
        connect("tcp://127.0.0.1:1")
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in str(exit_info.value)
