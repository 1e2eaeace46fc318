"""compare: resumable runs, one output folder per settings, variants and held-out seeds, and the report's statistics."""

import json
import re
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.image import imread

import sb3_reinforce.zoo.compare as compare_module
import sb3_reinforce.zoo.hyperparams as hyperparams_module
import sb3_reinforce.zoo.training as training_module
from sb3_reinforce.zoo.compare import NothingToReportError, compare, main, parse_override, parse_seeds
from sb3_reinforce.zoo.hyperparams import default_config_file, entry_hyperparameters
from sb3_reinforce.zoo.report import first_reaching, learning_curves, mean_with_ci, summary_markdown
from sb3_reinforce.zoo.results import (
    EVALUATION_COLUMNS,
    Run,
    Settings,
    hyperparameters_path,
    read_run_hyperparameters,
    run_path,
)
from sb3_reinforce.zoo.training import make_run_eval_env

ALGOS = ["reinforce", "ppo"]
# 2 algos x 2 seeds x 1500 steps, evaluated every 500 steps on 2 episodes
TINY = dict(n_timesteps=1500, eval_freq=500, eval_episodes=2)


def table_rows(summary: str) -> list[list[str]]:
    """The cells of the result rows of a summary table (header and separator left out)."""
    rows = [line.split("|")[1:-1] for line in summary.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:]]


def check_outputs(output: Path, seeds: list[int]) -> pd.DataFrame:
    """Check the CSV, the table and the image of a finished comparison; return the evaluations."""
    evaluations = pd.read_csv(output / "evaluations.csv", keep_default_na=False)
    assert list(evaluations.columns) == EVALUATION_COLUMNS
    assert set(evaluations["algo"]) == set(ALGOS)
    assert set(evaluations["seed"]) == set(seeds)
    for _, run in evaluations.groupby(["algo", "seed"]):
        # Evaluated at the start, every 500 steps and at the end
        assert run["timesteps"].iloc[0] == 0
        assert run["timesteps"].iloc[-1] >= TINY["n_timesteps"]
        assert run["time_s"].is_monotonic_increasing
    # Algorithms in the order they were given
    assert [row[0] for row in table_rows((output / "summary.md").read_text())] == ALGOS
    assert imread(output / "learning_curves.png").ndim == 3
    return evaluations


def test_compare_resumes_after_interruption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train_and_evaluate = compare_module.train_and_evaluate
    trained = []

    def interrupted_after_two_runs(run: Run, *args) -> Path:
        if len(trained) == 2:
            raise KeyboardInterrupt
        trained.append((run.algo, run.seed))
        return train_and_evaluate(run, *args)

    monkeypatch.setattr(compare_module, "train_and_evaluate", interrupted_after_two_runs)
    with pytest.raises(KeyboardInterrupt):
        compare("CartPole-v1", ALGOS, [0, 1], tmp_path, **TINY)
    finished = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "runs").iterdir()}
    assert sorted(finished) == ["reinforce_seed0.csv", "reinforce_seed0.json", "reinforce_seed1.csv", "reinforce_seed1.json"]

    # Re-running trains only the missing runs and keeps the finished ones untouched
    trained.clear()
    compare("CartPole-v1", ALGOS, [0, 1], tmp_path, **TINY)
    assert trained == [("ppo", 0), ("ppo", 1)]
    for name, mtime in finished.items():
        assert (tmp_path / "runs" / name).stat().st_mtime_ns == mtime
    evaluations = check_outputs(tmp_path, seeds=[0, 1])
    pd.testing.assert_frame_equal(
        evaluations[evaluations["algo"] == "reinforce"].reset_index(drop=True),
        pd.concat(
            [pd.read_csv(run_path(tmp_path, Run("reinforce", seed)), keep_default_na=False) for seed in range(2)],
            ignore_index=True,
        ),
    )


def test_run_finished_by_another_compare_is_not_trained_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two compare commands on one output: the runs each planned at its start include runs the other finishes first
    compare("CartPole-v1", ["reinforce"], [1], tmp_path / "other", **TINY)
    finished_by_other = run_path(tmp_path / "other", Run("reinforce", 1))
    seed_1_here = run_path(tmp_path, Run("reinforce", 1))
    train_and_evaluate = compare_module.train_and_evaluate
    trained = []

    def other_compare_finishes_seed_1(run: Run, *args) -> Path:
        if run.seed == 0:
            seed_1_here.parent.mkdir(exist_ok=True)
            seed_1_here.write_bytes(finished_by_other.read_bytes())
        return train_and_evaluate(run, *args)

    def training(run: Run, *args) -> Path:
        trained.append(run.seed)
        return _train_and_evaluate(run, *args)

    _train_and_evaluate = training_module._train_and_evaluate
    monkeypatch.setattr(compare_module, "train_and_evaluate", other_compare_finishes_seed_1)
    monkeypatch.setattr(training_module, "_train_and_evaluate", training)
    compare("CartPole-v1", ["reinforce"], [0, 1], tmp_path, **TINY)
    assert trained == [0]
    assert seed_1_here.read_bytes() == finished_by_other.read_bytes()


def test_report_only_reports_the_finished_runs_and_trains_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    compare("CartPole-v1", ["reinforce"], [0], tmp_path / "CartPole-v1", **TINY)
    trained = []
    monkeypatch.setattr(training_module, "_train_and_evaluate", lambda run, *args: trained.append(run.name))
    grid = ["--env", "CartPole-v1", "--algos", *ALGOS, "--seeds", "0-1", "-n", "1500", "--eval-freq", "500"]
    main([*grid, "--held-out-seeds", "100", "--eval-episodes", "2", "--report-only", "--output", str(tmp_path)])
    assert trained == []
    summary = (tmp_path / "CartPole-v1" / "summary.md").read_text()
    # The command stated is the one that trains the whole grid
    assert summary.startswith(f"`python -m sb3_reinforce.compare {' '.join(grid)} --held-out-seeds 100 --eval-episodes 2")
    assert [row[:2] for row in table_rows(summary)] == [["reinforce", "0"]]
    unfinished = "- reinforce: seed 1\n- reinforce (held out): seed 100\n- ppo: seeds 0-1\n- ppo (held out): seed 100\n"
    assert f"the command above trains them):\n\n{unfinished}" in summary
    assert set(pd.read_csv(tmp_path / "CartPole-v1" / "evaluations.csv")["seed"]) == {0}

    with pytest.raises(NothingToReportError, match="no run of this comparison has finished"):
        compare("CartPole-v1", ["ppo"], [0], tmp_path / "CartPole-v1", **TINY, train=False)
    # On the command line: said for that env, and the command goes on with the others
    main(
        [
            "--env",
            "CartPole-v1",
            "--algos",
            "ppo",
            *grid[4:],
            "--eval-episodes",
            "2",
            "--report-only",
            "--output",
            str(tmp_path),
        ]
    )
    assert "CartPole-v1: no run of this comparison has finished" in capsys.readouterr().err


def test_runs_started_with_other_hyperparameters_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compare("CartPole-v1", ["reinforce"], [0, 1], tmp_path, **TINY)
    assert read_run_hyperparameters(tmp_path, Run("reinforce", 0)) == entry_hyperparameters("reinforce", "CartPole-v1")
    # Seed 1 as a run under way: started, not finished
    run_path(tmp_path, Run("reinforce", 1)).unlink()
    # The entry changes
    entries = yaml.safe_load(Path(default_config_file("reinforce", "CartPole-v1")).read_text())
    n_episodes = entries["CartPole-v1"]["n_episodes"]
    entries["CartPole-v1"]["n_episodes"] = n_episodes + 1
    changed_file = tmp_path / "reinforce.yml"
    changed_file.write_text(yaml.safe_dump(entries))
    monkeypatch.setattr(hyperparams_module, "default_config_file", lambda algo, env_id: str(changed_file))
    message = (
        "runs started with other hyperparameters than their entries have now, or not known to have been: "
        f"reinforce_seed0 (n_episodes: "
        f"{n_episodes} then, {n_episodes + 1} now), reinforce_seed1 (n_episodes: "
    )
    for train in (True, False):
        with pytest.raises(SystemExit, match=re.escape(message)):
            compare("CartPole-v1", ["reinforce"], [0, 1], tmp_path, **TINY, train=train)
    # What a --set row changes is recorded with the run
    compare("CartPole-v1", ["reinforce"], [0], tmp_path / "row", **{**TINY, "n_timesteps": 500}, variants=[{"gamma": 0.9}])
    assert read_run_hyperparameters(tmp_path / "row", Run("reinforce", 0, {"gamma": 0.9}))["gamma"] == 0.9
    # A record that cannot be read is named, not taken for a run of earlier versions
    record = hyperparameters_path(tmp_path, Run("reinforce", 0))
    for damaged in ('{"n_episodes": ', "[]"):
        record.write_text(damaged)
        with pytest.raises(SystemExit, match=re.escape(f"reinforce_seed0 (its record: {record} ")):
            compare("CartPole-v1", ["reinforce"], [0], tmp_path, **TINY, train=False)
    # Runs that recorded nothing (started by earlier versions) are taken as they are
    for seed in (0, 1):
        hyperparameters_path(tmp_path, Run("reinforce", seed)).unlink()
    compare("CartPole-v1", ["reinforce"], [0], tmp_path, **TINY, train=False)


def test_other_settings_need_another_output(tmp_path: Path) -> None:
    compare("CartPole-v1", ["reinforce"], [0], tmp_path, **TINY)
    with pytest.raises(SystemExit, match="choose another --output"):
        compare("CartPole-v1", ["reinforce"], [0], tmp_path, **{**TINY, "n_timesteps": 3000})


def test_folder_with_overlapping_evaluation_seeds_needs_another_output(tmp_path: Path) -> None:
    compare("CartPole-v1", ["reinforce"], [0], tmp_path, **TINY)
    settings_file = tmp_path / "settings.json"
    recorded = json.loads(settings_file.read_text())
    assert recorded["eval_seeds"] == "disjoint"
    # settings.json as versions that seeded the evaluation envs seed + i wrote it
    del recorded["eval_seeds"]
    settings_file.write_text(json.dumps(recorded))
    with pytest.raises(SystemExit, match=r"'eval_seeds': 'overlapping'.*choose another --output"):
        compare("CartPole-v1", ["reinforce"], [0], tmp_path, **TINY, train=False)


def initial_observations(seed: int, settings: Settings) -> set[tuple[float, ...]]:
    """The first observation of every evaluation env of the REINFORCE run of ``seed``."""
    eval_env = make_run_eval_env(Run("reinforce", seed), settings)
    observations = eval_env.reset()
    eval_env.close()
    return {tuple(observation) for observation in observations}


def test_runs_of_different_seeds_share_no_evaluation_env() -> None:
    settings = Settings("CartPole-v1", n_timesteps=1500, eval_freq=500, eval_episodes=10)
    # Same seed, same episodes: algorithms compared on a seed meet the same evaluation episodes
    assert initial_observations(0, settings) == initial_observations(0, settings)
    assert len(initial_observations(0, settings)) == settings.eval_episodes
    for seed, other_seed in [(0, 1), (1, 2), (0, 100)]:
        assert not initial_observations(seed, settings) & initial_observations(other_seed, settings)
    # Seeded s + i, as before the seeding was recorded, seeds 0 and 1 share 9 of their 10 envs
    overlapping = replace(settings, eval_seeds="overlapping")
    assert len(initial_observations(0, overlapping) & initial_observations(1, overlapping)) == 9


def test_unknown_evaluation_seeding_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("eval_seeds must be one of ('disjoint', 'overlapping'), got 'shared'")):
        Settings("CartPole-v1", 1500, 500, 10, eval_seeds="shared")


@pytest.mark.slow
def test_command_line_parallel_jobs_variants_and_held_out_seeds(tmp_path: Path) -> None:
    command = (
        f"-m sb3_reinforce.compare --env CartPole-v1 --algos {' '.join(ALGOS)} --seeds 0 --held-out-seeds 100 "
        f"-n {TINY['n_timesteps']} --eval-freq {TINY['eval_freq']} --eval-episodes {TINY['eval_episodes']} --jobs 2 "
        f"--output {tmp_path} --results {tmp_path / 'results'} --set gamma=0.9"
    )
    result = subprocess.run([sys.executable, *shlex.split(command)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "1 env(s) x 2 algo(s) x 2 variant(s) x 2 seed(s) = 8 runs, 12,000 env steps in all" in result.stdout
    summary = (tmp_path / "results" / "CartPole-v1.md").read_text()
    assert summary.startswith("`python -m sb3_reinforce.compare --env CartPole-v1")
    rows = [(row[0], row[1]) for row in table_rows(summary)]
    assert rows == [
        (label, seeds)
        for label in ("reinforce", "reinforce (gamma=0.9)", "ppo", "ppo (gamma=0.9)")
        for seeds in ("0", "100 (held out)")
    ]
    assert imread(tmp_path / "results" / "CartPole-v1.png").ndim == 3
    assert (tmp_path / "CartPole-v1" / "runs" / "reinforce[gamma=0.9]_seed100.csv").exists()


def test_help_shows_every_default(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: [[0, 1, 2, 3, 4]])", "(default: 10)", "(default: 1)", "(default: compare)"):
        assert default in help_text


def test_seed_and_override_parsing() -> None:
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("7") == [7]
    assert parse_override("learning_rate=1e-3") == ("learning_rate", 1e-3)
    assert parse_override("learning_rate=lin_1e-3") == ("learning_rate", "lin_1e-3")
    assert parse_override("baseline=null") == ("baseline", None)
    assert parse_override("gamma_weighting=false") == ("gamma_weighting", False)


def evaluations_of(rows: list[tuple[str, int, int, float]]) -> pd.DataFrame:
    columns = ["algo", "seed", "timesteps", "mean_reward"]
    return pd.DataFrame(rows, columns=columns).assign(variant="", std_reward=0.0, time_s=lambda frame: frame["timesteps"] / 10)


def test_summary_statistics() -> None:
    evaluations = evaluations_of(
        [
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
    )
    reached = first_reaching(evaluations, reward_threshold=195.0)
    assert reached.loc[("a", "", 0), "timesteps"] == 100
    assert reached.loc[("a", "", 1), "timesteps"] == 200
    assert np.isnan(reached.loc[("b", "", 0), "timesteps"])

    summary = summary_markdown(evaluations, Settings("Env-v0", 200, 100, 10), reward_threshold=195.0)
    row_a, row_b = table_rows(summary)
    # Final returns 150 and 210: mean 180; maxima 200 and 210: 205; threshold first reached at 100 and 200 steps
    assert row_a[:3] == ["a", "0-1", "180.0 [150.0, 210.0]"]
    assert row_a[4:6] == ["205.0", "150 / 15 s (2/2)"]
    assert row_b[2:6] == ["20.0", "n/a (1 seed)", "20.0", "never (0/1)"]
    assert "- a: 0: 150.0, 1: 210.0" in summary


def test_learning_curves_keep_held_out_seeds_apart() -> None:
    # As the table: seeds 0-1 in one curve, held-out seed 100 in a dashed one of the same colour, b alone
    evaluations = evaluations_of(
        [
            ("a", 0, 0, 0.0),
            ("a", 0, 100, 10.0),
            ("a", 1, 0, 0.0),
            ("a", 1, 100, 30.0),
            ("a", 100, 0, 0.0),
            ("a", 100, 100, 100.0),
            ("b", 0, 0, 0.0),
            ("b", 0, 100, 5.0),
        ]
    )
    figure = learning_curves(evaluations, Settings("Env-v0", 100, 100, 10), None, frozenset({100}))
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert list(lines) == ["a (2 seeds)", "a (held out) (1 seed)", "b (1 seed)"]
    assert list(lines["a (2 seeds)"].get_ydata()) == [0.0, 20.0]
    assert list(lines["a (held out) (1 seed)"].get_ydata()) == [0.0, 100.0]
    assert lines["a (held out) (1 seed)"].get_linestyle() == "--"
    assert lines["a (held out) (1 seed)"].get_color() == lines["a (2 seeds)"].get_color() != lines["b (1 seed)"].get_color()


def test_two_seeds_read_sensibly() -> None:
    # Two seeds at the ends of CartPole's range: a Student-t interval would be 250 ± 3177
    evaluations = evaluations_of([("a", 0, 0, 0.0), ("a", 0, 100, 0.0), ("a", 1, 0, 0.0), ("a", 1, 100, 500.0)])
    summary = summary_markdown(evaluations, Settings("CartPole-v1", 100, 100, 10), reward_threshold=475.0)
    final = table_rows(summary)[0][2]
    mean, low, high = (float(value) for value in final.replace("[", "").replace("]", "").replace(",", "").split())
    assert mean == 250.0
    assert 0.0 <= low <= mean <= high <= 500.0


def test_intervals_are_the_same_every_time() -> None:
    # A report renders the same numbers whatever numpy's global generator did before (rliable 1.2 draws from it)
    scores = np.array([2016.7, 1289.9, 1689.2, 2546.2, 935.6])
    first = mean_with_ci(scores)
    np.random.seed(1)
    assert mean_with_ci(scores) == first
    # ...and leaves that generator as it found it
    np.random.seed(1)
    expected = np.random.random()
    np.random.seed(1)
    mean_with_ci(scores)
    assert np.random.random() == expected
