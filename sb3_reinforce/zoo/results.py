"""
The results contract of a comparison, read by the runner (``compare``) and the report alike: the settings that make
runs comparable, the columns of an evaluation row and the layout of an output folder::

    <output>/settings.json               Settings of every run in the folder
    <output>/runs/<run name>.csv          the evaluations of one finished run (written atomically)
    <output>/runs/<run name>.json         the hyperparameters of a run, finished or not, recorded when it started
    <output>/checkpoints/<run name>.pkl   the state of an unfinished run (see ``sb3_reinforce.zoo.checkpoints``)
    <output>/evaluations.csv              every evaluation of every run, the input of the report
    <output>/summary.md, learning_curves.png
"""

import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

EVALUATION_COLUMNS = ["algo", "variant", "seed", "timesteps", "mean_reward", "std_reward", "time_s"]
# How the evaluation envs of a run are seeded, see Settings
EVAL_SEEDINGS = ("disjoint", "overlapping")


@dataclass(frozen=True)
class Settings:
    """
    What makes runs comparable: runs made with other settings cannot share an output folder.

    :param env_id: Gymnasium id of the environment
    :param n_timesteps: Training budget of every run
    :param eval_freq: Evaluate every ``eval_freq`` env steps (all training envs together)
    :param eval_episodes: Episodes per evaluation (deterministic actions)
    :param eval_seeds: How a run's evaluation envs (one per episode) are seeded (``first_eval_seed``): ``"disjoint"``,
        env ``i`` of the run of seed ``s`` gets ``s * eval_episodes + i``, so that runs of different seeds share no
        evaluation env; ``"overlapping"``, ``s + i``, where neighbouring seeds share all their evaluation envs but one
        (folders written before the seeding was recorded read as such)
    """

    env_id: str
    n_timesteps: int
    eval_freq: int
    eval_episodes: int
    eval_seeds: str = "disjoint"

    def __post_init__(self) -> None:
        if self.eval_seeds not in EVAL_SEEDINGS:
            raise ValueError(f"eval_seeds must be one of {EVAL_SEEDINGS}, got {self.eval_seeds!r}")

    def first_eval_seed(self, seed: int) -> int:
        """
        :param seed: Seed of a run
        :return: The seed of its first evaluation env; env ``i`` gets this seed plus ``i`` (SB3's ``make_vec_env``)
        """
        return seed * self.eval_episodes if self.eval_seeds == "disjoint" else seed


@dataclass(frozen=True)
class Run:
    """
    One training run of a comparison.

    :param algo: rl-zoo3 name of the algorithm
    :param seed: Seed of the model and of its envs
    :param overrides: Hyperparameters changed from the zoo entry (a variant row), as ``{name: value}``
    """

    algo: str
    seed: int
    overrides: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def variant(self) -> str:
        """The label of the overrides, ``""`` for the zoo entry itself (e.g. ``"baseline=mean, n_episodes=16"``)."""
        return ", ".join(f"{name}={value}" for name, value in self.overrides.items())

    @property
    def name(self) -> str:
        """The file name of the run, without suffix (e.g. ``reinforce_seed0``, ``reinforce[baseline=mean]_seed0``)."""
        variant = re.sub(r"[^A-Za-z0-9_.=,-]", "", self.variant.replace(", ", ","))
        return f"{self.algo}[{variant}]_seed{self.seed}" if variant else f"{self.algo}_seed{self.seed}"


def run_path(output: Path, run: Run) -> Path:
    """
    :param output: Output folder of one env's comparison
    :param run: The run
    :return: The file holding the evaluations of the finished run
    """
    return output / "runs" / f"{run.name}.csv"


def hyperparameters_path(output: Path, run: Run) -> Path:
    """
    :param output: Output folder of one env's comparison
    :param run: The run
    :return: The file holding the hyperparameters the run was started with (finished or not)
    """
    return output / "runs" / f"{run.name}.json"


def read_run_hyperparameters(output: Path, run: Run) -> dict[str, Any] | None:
    """
    :param output: Output folder of one env's comparison
    :param run: A run, finished or not
    :return: The hyperparameters it was started with, ``None`` if they were not recorded (runs started by earlier
        versions)
    :raises ValueError: if the record is there but is not a JSON object (a damaged or hand-edited file)
    """
    path = hyperparameters_path(output, run)
    if not path.exists():
        return None
    try:
        recorded = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} cannot be read ({error})") from None
    if not isinstance(recorded, dict):
        raise ValueError(f"{path} holds a {type(recorded).__name__}, not the hyperparameters")
    return recorded


def checkpoint_path(output: Path, run: Run) -> Path:
    """
    :param output: Output folder of one env's comparison
    :param run: The run
    :return: The file holding the checkpoint of the unfinished run
    """
    return output / "checkpoints" / f"{run.name}.pkl"


def run_file_problem(path: Path, run: Run, settings: Settings) -> str | None:
    """
    :param path: The result file of a finished run
    :param run: The run
    :param settings: The settings of the comparison
    :return: What is wrong with the file (unreadable, empty, truncated before the budget, rows out of order or of
        another run), or ``None`` if nothing is
    """
    try:
        evaluations = pd.read_csv(path, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        return f"unreadable: {error}"
    if list(evaluations.columns) != EVALUATION_COLUMNS:
        return f"columns {list(evaluations.columns)}, expected {EVALUATION_COLUMNS}"
    if evaluations.empty:
        return "no evaluation"
    timesteps = pd.to_numeric(evaluations["timesteps"], errors="coerce")
    if timesteps.isna().any() or pd.to_numeric(evaluations["mean_reward"], errors="coerce").isna().any():
        return "non-numeric values"
    if timesteps.iloc[0] != 0 or not timesteps.is_monotonic_increasing or timesteps.duplicated().any():
        return "evaluations not in increasing step order from 0"
    if timesteps.iloc[-1] < settings.n_timesteps:
        return f"last evaluation at {timesteps.iloc[-1]:,} steps, before the budget of {settings.n_timesteps:,}"
    if set(zip(evaluations["algo"], evaluations["variant"], evaluations["seed"], strict=True)) != {
        (run.algo, run.variant, run.seed)
    }:
        return "rows of another run"
    return None


def write_run(output: Path, run: Run, rows: list[dict[str, float]]) -> Path:
    """
    Write the evaluations of a finished run atomically (a reader never sees a partial file).

    :param output: Output folder of one env's comparison
    :param run: The run
    :param rows: Its evaluations, each with ``timesteps``, ``mean_reward``, ``std_reward`` and ``time_s``
    :return: The file written
    """
    evaluations = pd.DataFrame(rows).assign(algo=run.algo, variant=run.variant, seed=run.seed)[EVALUATION_COLUMNS]
    path = run_path(output, run)
    _write_atomically(path, lambda partial: evaluations.to_csv(partial, index=False))
    return path


def write_run_hyperparameters(output: Path, run: Run, hyperparameters: dict[str, Any]) -> None:
    """
    Record atomically the hyperparameters a run starts with (``hyperparameters_path``).

    :param output: Output folder of one env's comparison
    :param run: The run
    :param hyperparameters: Its hyperparameters (``sb3_reinforce.zoo.hyperparams.entry_hyperparameters``)
    """
    _write_atomically(hyperparameters_path(output, run), lambda partial: partial.write_text(json.dumps(hyperparameters)))


def _write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Write ``path`` through a temporary file beside it (``write`` writes that file), renamed once complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(partial_path)
    os.replace(partial_path, path)


def read_runs(output: Path, runs: list[Run]) -> pd.DataFrame:
    """
    :param output: Output folder of one env's comparison
    :param runs: Finished runs
    :return: Their evaluations, run after run (the variant of the zoo entry itself is ``""``)
    """
    frames = [pd.read_csv(run_path(output, run), keep_default_na=False) for run in runs]
    return pd.concat(frames, ignore_index=True)[EVALUATION_COLUMNS]


def read_evaluations(output: Path) -> pd.DataFrame:
    """
    :param output: Output folder of one env's comparison
    :return: The content of its ``evaluations.csv``
    """
    return pd.read_csv(output / "evaluations.csv", keep_default_na=False)


def record_settings(output: Path, settings: Settings) -> None:
    """
    Record ``settings`` in ``<output>/settings.json``, or check they match the ones recorded there.

    :raises SystemExit: if the output folder holds runs made with other settings
    """
    settings_file = output / "settings.json"
    if settings_file.exists():
        recorded = read_settings(output)
        if recorded != settings:
            raise SystemExit(
                f"{output} holds runs made with {asdict(recorded)}, not {asdict(settings)}: choose another --output"
            )
    else:
        output.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(json.dumps(asdict(settings), indent=2))


def read_settings(output: Path) -> Settings:
    """
    :param output: Output folder of one env's comparison
    :return: The settings recorded there
    """
    settings_file = output / "settings.json"
    try:
        return Settings(**{"eval_seeds": "overlapping", **json.loads(settings_file.read_text())})
    except (ValueError, TypeError) as error:  # JSONDecodeError is a ValueError
        raise SystemExit(
            f"{settings_file} is damaged ({type(error).__name__}: {error}): delete it to keep the runs of this folder "
            "(they are checked against the new settings on the next run), or choose another --output"
        ) from None
