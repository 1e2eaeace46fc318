import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

import sb3_reinforce.zoo.compare as compare_module
from sb3_reinforce.zoo.compare import EVALUATION_COLUMNS, Settings, compare, run_path
from sb3_reinforce.zoo.report import steps_to_threshold, summary_markdown

ALGOS = ["reinforce", "ppo"]
# 2 algos x 2 seeds x 1500 steps, evaluated every 500 steps on 2 episodes
TINY = dict(n_timesteps=1500, eval_freq=500, eval_episodes=2)


def check_outputs(output: Path, n_seeds: int) -> pd.DataFrame:
    """Check the CSV, the table and the image of a finished comparison; return the evaluations."""
    evaluations = pd.read_csv(output / "evaluations.csv")
    assert list(evaluations.columns) == EVALUATION_COLUMNS
    assert set(evaluations["algo"]) == set(ALGOS)
    assert set(evaluations["seed"]) == set(range(n_seeds))
    for (_, _), run in evaluations.groupby(["algo", "seed"]):
        # Evaluated at the start, every 500 steps and at the end
        assert run["timesteps"].iloc[0] == 0
        assert run["timesteps"].iloc[-1] >= TINY["n_timesteps"]
        assert run["time_s"].is_monotonic_increasing
    summary = (output / "summary.md").read_text()
    table_rows = [line for line in summary.splitlines() if line.startswith("| ") and line.split("|")[1].strip() in ALGOS]
    # Algorithms in the order they were given
    assert [row.split("|")[1].strip() for row in table_rows] == ALGOS
    assert imread(output / "learning_curves.png").ndim == 3
    return evaluations


def test_compare_resumes_after_interruption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train_and_evaluate = compare_module.train_and_evaluate
    trained = []

    def interrupted_after_two_runs(algo: str, seed: int, *args) -> Path:
        if len(trained) == 2:
            raise KeyboardInterrupt
        trained.append((algo, seed))
        return train_and_evaluate(algo, seed, *args)

    monkeypatch.setattr(compare_module, "train_and_evaluate", interrupted_after_two_runs)
    with pytest.raises(KeyboardInterrupt):
        compare("CartPole-v1", ALGOS, 2, tmp_path, **TINY)
    finished = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "runs").iterdir()}
    assert sorted(finished) == ["reinforce_seed0.csv", "reinforce_seed1.csv"]

    # Re-running trains only the missing runs and keeps the finished ones untouched
    trained.clear()
    compare("CartPole-v1", ALGOS, 2, tmp_path, **TINY)
    assert trained == [("ppo", 0), ("ppo", 1)]
    for name, mtime in finished.items():
        assert (tmp_path / "runs" / name).stat().st_mtime_ns == mtime
    evaluations = check_outputs(tmp_path, n_seeds=2)
    pd.testing.assert_frame_equal(
        evaluations[evaluations["algo"] == "reinforce"].reset_index(drop=True),
        pd.concat([pd.read_csv(run_path(tmp_path, "reinforce", seed)) for seed in range(2)], ignore_index=True),
    )


def test_other_settings_need_another_output(tmp_path: Path) -> None:
    compare("CartPole-v1", ["reinforce"], 1, tmp_path, **TINY)
    with pytest.raises(SystemExit, match="choose another --output"):
        compare("CartPole-v1", ["reinforce"], 1, tmp_path, **{**TINY, "n_timesteps": 3000})


def test_command_line_parallel_jobs(tmp_path: Path) -> None:
    command = (
        f"-m sb3_reinforce.compare --env CartPole-v1 --algos {' '.join(ALGOS)} --seeds 2 -n {TINY['n_timesteps']} "
        f"--eval-freq {TINY['eval_freq']} --eval-episodes {TINY['eval_episodes']} --jobs 2 --output {tmp_path}"
    )
    result = subprocess.run([sys.executable, *shlex.split(command)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    check_outputs(tmp_path, n_seeds=2)
    assert "| reinforce | 2 |" in result.stdout


def test_summary_statistics() -> None:
    rows = [
        # algo, seed, timesteps, mean_reward
        ("a", 0, 0, 10.0),
        ("a", 0, 100, 200.0),
        ("a", 0, 200, 150.0),
        ("a", 1, 0, 10.0),
        ("a", 1, 100, 50.0),
        ("a", 1, 200, 210.0),
        ("b", 0, 0, 10.0),
        ("b", 0, 200, 20.0),
    ]
    evaluations = pd.DataFrame(rows, columns=["algo", "seed", "timesteps", "mean_reward"]).assign(std_reward=0.0, time_s=1.0)
    reached = steps_to_threshold(evaluations, reward_threshold=195.0)
    assert reached[("a", 0)] == 100
    assert reached[("a", 1)] == 200
    assert np.isnan(reached[("b", 0)])

    summary = summary_markdown(evaluations, Settings("Env-v0", 200, 100, 10), reward_threshold=195.0)
    row_a, row_b = (line for line in summary.splitlines() if line.startswith("| a ") or line.startswith("| b "))
    # Final rewards 150 and 210: mean 180, Student-t 95% CI half-width 12.706 * 30 = 381.2
    assert "| 180.0 ± 381.2 |" in row_a
    assert "| 150 (2/2) |" in row_a
    assert "| never (0/1) |" in row_b
