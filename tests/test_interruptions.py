"""
Comparisons survive interruption: real SIGTERMs to real `compare` processes leave checkpoints, the same command
continues every run to its budget with no evaluation lost or doubled, and damaged result files are named and redone.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sb3_reinforce.zoo.checkpoints import load_checkpoint
from sb3_reinforce.zoo.compare import compare
from sb3_reinforce.zoo.results import Run, checkpoint_path, run_path

BUDGET = 40_000
EVAL_FREQ = 4_000


def command(output: Path, seeds: str = "0", jobs: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sb3_reinforce.compare",
        *("--env", "CartPole-v1", "--algos", "reinforce", "--seeds", seeds, "-n", str(BUDGET)),
        *("--eval-freq", str(EVAL_FREQ), "--eval-episodes", "2", "--jobs", str(jobs), "--output", str(output)),
    ]


def wait_for_checkpoint(path: Path, process: subprocess.Popen, min_steps: int = 2 * EVAL_FREQ) -> None:
    """Wait until the checkpoint at ``path`` holds at least ``min_steps`` steps."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if path.exists() and load_checkpoint(path).num_timesteps >= min_steps:
            return
        time.sleep(0.2)
    raise TimeoutError(f"no checkpoint at {path}")


def check_complete_run(path: Path, rows_before: list[dict]) -> None:
    """The run's evaluations go from 0 to the budget, in order, once each, starting with the checkpointed ones."""
    evaluations = pd.read_csv(path, keep_default_na=False)
    timesteps = evaluations["timesteps"].tolist()
    assert timesteps[0] == 0 and timesteps[-1] >= BUDGET
    assert timesteps == sorted(set(timesteps))
    for index, row in enumerate(rows_before):
        assert timesteps[index] == row["timesteps"]
        assert evaluations["mean_reward"][index] == pytest.approx(row["mean_reward"])


def children_of(pid: int) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(line) for line in result.stdout.split()]


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
def test_sigterm_checkpoints_and_the_same_command_continues(tmp_path: Path) -> None:
    output = tmp_path / "compare"
    checkpoint = checkpoint_path(output / "CartPole-v1", Run("reinforce", 0))
    process = subprocess.Popen(command(output), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_checkpoint(checkpoint, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "checkpoint written. Run the same command again to continue." in stderr
    saved = load_checkpoint(checkpoint)
    assert 2 * EVAL_FREQ <= saved.num_timesteps < BUDGET
    assert not run_path(output / "CartPole-v1", Run("reinforce", 0)).exists()

    result = subprocess.run(command(output), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    check_complete_run(run_path(output / "CartPole-v1", Run("reinforce", 0)), saved.rows)
    assert not checkpoint.exists()


@pytest.mark.slow
def test_sigterm_to_a_parallel_compare_stops_its_workers(tmp_path: Path) -> None:
    output = tmp_path / "compare"
    runs = [Run("reinforce", seed) for seed in range(4)]
    process = subprocess.Popen(command(output, seeds="0-3", jobs=2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for run in runs[:2]:
        wait_for_checkpoint(checkpoint_path(output / "CartPole-v1", run), process, min_steps=EVAL_FREQ)
    workers = children_of(process.pid)
    assert workers
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0, stderr
    deadline = time.monotonic() + 30
    while any(is_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(is_running(pid) for pid in workers), "workers still running after SIGTERM"
    # The queued runs never started
    for run in runs[2:]:
        assert not checkpoint_path(output / "CartPole-v1", run).exists()
        assert not run_path(output / "CartPole-v1", run).exists()
    rows_before = {run: load_checkpoint(checkpoint_path(output / "CartPole-v1", run)).rows for run in runs[:2]}

    result = subprocess.run(command(output, seeds="0-3", jobs=2), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for run in runs:
        check_complete_run(run_path(output / "CartPole-v1", run), rows_before.get(run, []))


def finished_comparison(output: Path) -> None:
    compare("CartPole-v1", ["reinforce"], [0, 1], output, n_timesteps=1000, eval_freq=500, eval_episodes=2)


@pytest.fixture(scope="module")
def finished_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished comparison, made once: each test damages a copy of it."""
    output = tmp_path_factory.mktemp("finished")
    finished_comparison(output)
    return output


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda text: text[: text.rindex("\n", 0, -1) + 1], "last evaluation at"),
        (lambda text: "", "unreadable"),
        (lambda text: text[: len(text) // 2 + 3], ""),
    ],
    ids=["last-row-lost", "empty", "cut-mid-row"],
)
def test_damaged_run_file_is_named_and_redone(tmp_path: Path, finished_output: Path, damage, problem: str, capsys) -> None:
    shutil.copytree(finished_output, tmp_path, dirs_exist_ok=True)
    damaged = run_path(tmp_path, Run("reinforce", 1))
    intact = run_path(tmp_path, Run("reinforce", 0))
    intact_mtime, complete = intact.stat().st_mtime_ns, damaged.read_text()
    damaged.write_text(damage(complete))
    finished_comparison(tmp_path)
    assert f"{damaged} is damaged ({problem}" in capsys.readouterr().err
    assert damaged.read_text().count("\n") == complete.count("\n")
    assert intact.stat().st_mtime_ns == intact_mtime


@pytest.mark.parametrize(
    "damage",
    [lambda text: text[:20], lambda text: text.replace('"disjoint"', '"shared"')],
    ids=["truncated", "unknown seeding"],
)
def test_damaged_settings_file_is_named(tmp_path: Path, finished_output: Path, damage) -> None:
    shutil.copytree(finished_output, tmp_path, dirs_exist_ok=True)
    settings_file = tmp_path / "settings.json"
    intact = settings_file.read_text()
    assert damage(intact) != intact
    settings_file.write_text(damage(intact))
    with pytest.raises(SystemExit, match=f"{settings_file} is damaged"):
        finished_comparison(tmp_path)


def test_damaged_checkpoint_is_named_and_the_run_starts_again(tmp_path: Path, capsys) -> None:
    path = checkpoint_path(tmp_path, Run("reinforce", 0))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a pickle")
    compare("CartPole-v1", ["reinforce"], [0], tmp_path, n_timesteps=1000, eval_freq=500, eval_episodes=2)
    assert f"{path} cannot be read back" in capsys.readouterr().err
    assert run_path(tmp_path, Run("reinforce", 0)).exists()
    assert not path.exists()
    assert os.listdir(path.parent) == []
