"""The outputs of a comparison: a markdown summary table and learning curves with 95% confidence bands."""

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from rliable import library as rly
from rliable import metrics
from scipy import stats

if TYPE_CHECKING:
    from sb3_reinforce.zoo.compare import Settings

CONFIDENCE = 0.95
# Bootstrap resamples of the IQM confidence interval
BOOTSTRAP_REPS = 2000


def mean_and_ci(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    :param values: One row per seed
    :return: The mean over seeds and the half-width of its Student-t 95% confidence interval (NaN with one seed)
    """
    n_seeds = values.shape[0]
    if n_seeds < 2:
        return values.mean(axis=0), np.full(values.shape[1:], np.nan)
    return values.mean(axis=0), stats.sem(values, axis=0) * stats.t.ppf((1 + CONFIDENCE) / 2, n_seeds - 1)


def final_rows(evaluations: pd.DataFrame) -> pd.DataFrame:
    """
    :param evaluations: Every evaluation of every run, in chronological order within each run
    :return: The last evaluation of each run, in the order of ``evaluations``
    """
    return evaluations.groupby(["algo", "seed"], sort=False).tail(1)


def steps_to_threshold(evaluations: pd.DataFrame, reward_threshold: float) -> pd.Series:
    """
    :param evaluations: Every evaluation of every run
    :param reward_threshold: The env's reward threshold
    :return: For each (algo, seed), the first evaluated step count with ``mean_reward >= reward_threshold`` (NaN: never)
    """
    reached = evaluations[evaluations["mean_reward"] >= reward_threshold]
    first = reached.groupby(["algo", "seed"])["timesteps"].min()
    return first.reindex(pd.MultiIndex.from_frame(evaluations[["algo", "seed"]].drop_duplicates()))


def iqm_with_ci(scores: np.ndarray) -> tuple[float, float, float]:
    """
    :param scores: Final score of each seed
    :return: Interquartile mean (rliable) and the bounds of its stratified-bootstrap 95% confidence interval
    """
    with warnings.catch_warnings():
        # rliable seeds the bootstrap with a RandomState, which its backend (arch) deprecates
        warnings.simplefilter("ignore", FutureWarning)
        point, interval = rly.get_interval_estimates(
            {"scores": scores[:, np.newaxis]},
            lambda runs: np.array([metrics.aggregate_iqm(runs)]),
            reps=BOOTSTRAP_REPS,
            confidence_interval_size=CONFIDENCE,
            random_state=np.random.RandomState(0),
        )
    return float(point["scores"][0]), float(interval["scores"][0, 0]), float(interval["scores"][1, 0])


def summary_markdown(evaluations: pd.DataFrame, settings: "Settings", reward_threshold: float | None) -> str:
    """
    :param evaluations: Every evaluation of every run
    :param settings: Env, budget and evaluation protocol of the comparison
    :param reward_threshold: The env's reward threshold (``env.spec.reward_threshold``), if any
    :return: A markdown table: final reward (mean and 95% CI over seeds), its IQM, the steps needed to reach
        the reward threshold, training wall time and throughput
    """
    finals = final_rows(evaluations)
    # Rewards of order 1 (success rates) need more decimals than returns of order 100
    decimals = 1 if evaluations["mean_reward"].abs().max() >= 10 else 2
    reached = steps_to_threshold(evaluations, reward_threshold) if reward_threshold is not None else None
    threshold_title = (
        f"Steps to {reward_threshold:g} (median, reached)" if reward_threshold is not None else "Steps to threshold"
    )
    lines = [
        f"**{settings.env_id}**: {settings.n_timesteps:,} steps per run, evaluation every {settings.eval_freq:,} steps "
        f"on {settings.eval_episodes} deterministic episodes; final = last evaluation.",
        "",
        f"| Algorithm | Seeds | Final reward (mean ± 95% CI) | IQM [95% CI] | {threshold_title} | Train time (s) | FPS |",
        "|---|---|---|---|---|---|---|",
    ]
    for algo, runs in finals.groupby("algo", sort=False):
        scores = runs["mean_reward"].to_numpy()
        mean, half_width = mean_and_ci(scores)
        iqm, iqm_low, iqm_high = iqm_with_ci(scores)
        if reached is None:
            threshold_cell = "n/a (no threshold)"
        else:
            steps = reached.loc[algo].dropna()
            median = f"{steps.median():,.0f}" if len(steps) else "never"
            threshold_cell = f"{median} ({len(steps)}/{len(scores)})"
        time_s = runs["time_s"].to_numpy()
        fps = (runs["timesteps"] / runs["time_s"]).mean()
        lines.append(
            f"| {algo} | {len(scores)} | {mean:.{decimals}f} ± {half_width:.{decimals}f} "
            f"| {iqm:.{decimals}f} [{iqm_low:.{decimals}f}, {iqm_high:.{decimals}f}] "
            f"| {threshold_cell} | {time_s.mean():.0f} ± {time_s.std():.0f} | {fps:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def plot_learning_curves(evaluations: pd.DataFrame, settings: "Settings", reward_threshold: float | None, path: Path) -> None:
    """
    Plot the mean evaluation reward of each algorithm against env steps, with its 95% confidence band over seeds
    (each run interpolated on the evaluation grid), and save it as an image.

    :param evaluations: Every evaluation of every run
    :param settings: Env, budget and evaluation protocol of the comparison
    :param reward_threshold: The env's reward threshold, drawn as a dashed line if any
    :param path: Image file to write (e.g. ``learning_curves.png``)
    """
    grid = np.arange(0, settings.n_timesteps + 1, settings.eval_freq)
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
    for algo, runs in evaluations.groupby("algo", sort=False):
        curves = np.array([np.interp(grid, run["timesteps"], run["mean_reward"]) for _, run in runs.groupby("seed")])
        mean, half_width = mean_and_ci(curves)
        (line,) = axes.plot(grid, mean, label=f"{algo} ({len(curves)} seeds)")
        axes.fill_between(grid, mean - half_width, mean + half_width, color=line.get_color(), alpha=0.2)
    if reward_threshold is not None:
        axes.axhline(reward_threshold, color="gray", linestyle="--", label="reward threshold")
    axes.set(title=settings.env_id, xlabel="env steps", ylabel=f"mean reward ({settings.eval_episodes} episodes)")
    axes.legend()
    figure.savefig(path, dpi=120)
