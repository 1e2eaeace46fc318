"""
The report of a comparison, rendered from its evaluations alone: a markdown table (final return with its bootstrap
95% confidence interval, IQM, maximum over training, steps and time to the reward threshold, throughput), the final
return of every seed, and learning curves with bootstrap bands.
"""

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.typing import ColorType
from rliable import library as rly
from rliable import metrics

from sb3_reinforce.zoo.published import published_markdown
from sb3_reinforce.zoo.results import Run, Settings

CONFIDENCE = 0.95
# Bootstrap resamples of every confidence interval
BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0


def bootstrap_interval(
    scores: np.ndarray, aggregate: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    rliable's percentile bootstrap over seeds: the interval lies within the range of the scores, whatever the number of
    seeds (a Student-t interval on 2 seeds can be 25 times wider than their spread).

    :param scores: One row per seed, one column per task (or evaluation point)
    :param aggregate: Maps a ``(seeds, columns)`` matrix to one value per column
    :return: The aggregate of ``scores`` and the lower and upper bounds of its 95% confidence interval, per column
    """
    # rliable 1.2 draws its resamples from numpy's global generator (StratifiedBootstrap.update_indices), whatever
    # random_state says: seeded here, so that a report renders the same intervals every time; restored after
    global_state = np.random.get_state()
    np.random.seed(BOOTSTRAP_SEED)
    try:
        with warnings.catch_warnings():
            # rliable seeds the bootstrap with a RandomState, which its backend (arch) deprecates
            warnings.simplefilter("ignore", FutureWarning)
            point, interval = rly.get_interval_estimates(
                {"scores": scores},
                aggregate,
                reps=BOOTSTRAP_REPS,
                confidence_interval_size=CONFIDENCE,
                random_state=np.random.RandomState(BOOTSTRAP_SEED),
            )
    finally:
        np.random.set_state(global_state)
    return point["scores"], interval["scores"][0], interval["scores"][1]


def mean_with_ci(scores: np.ndarray) -> tuple[float, float, float]:
    """
    :param scores: Final score of each seed
    :return: Their mean and the bounds of its bootstrap 95% confidence interval
    """
    mean, low, high = bootstrap_interval(scores[:, np.newaxis], lambda runs: runs.mean(axis=0))
    return float(mean[0]), float(low[0]), float(high[0])


def iqm_with_ci(scores: np.ndarray) -> tuple[float, float, float]:
    """
    :param scores: Final score of each seed
    :return: Interquartile mean (rliable) and the bounds of its stratified-bootstrap 95% confidence interval
    """
    iqm, low, high = bootstrap_interval(scores[:, np.newaxis], lambda runs: np.array([metrics.aggregate_iqm(runs)]))
    return float(iqm[0]), float(low[0]), float(high[0])


def final_rows(evaluations: pd.DataFrame) -> pd.DataFrame:
    """
    :param evaluations: Every evaluation of every run, in chronological order within each run
    :return: The last evaluation of each run, in the order of ``evaluations``
    """
    return evaluations.groupby(["algo", "variant", "seed"], sort=False).tail(1)


def first_reaching(evaluations: pd.DataFrame, reward_threshold: float) -> pd.DataFrame:
    """
    :param evaluations: Every evaluation of every run
    :param reward_threshold: The env's reward threshold
    :return: For each run (index algo, variant, seed), the step count and training time of its first evaluation with
        ``mean_reward >= reward_threshold`` (NaN: never)
    """
    keys = ["algo", "variant", "seed"]
    reached = evaluations[evaluations["mean_reward"] >= reward_threshold]
    first = reached.groupby(keys)[["timesteps", "time_s"]].first()
    return first.reindex(pd.MultiIndex.from_frame(evaluations[keys].drop_duplicates())).sort_index()


def row_label(algo: str, variant: str, held_out: bool = False) -> str:
    """
    :param held_out: Whether the group is of held-out seeds
    :return: How the report names a run group: ``reinforce``, ``reinforce (baseline=mean)``, ``reinforce (held out)``
    """
    return (f"{algo} ({variant})" if variant else algo) + (" (held out)" if held_out else "")


def seed_list(seeds: list[int]) -> str:
    """
    :param seeds: Sorted seeds
    :return: ``"0-4"`` for consecutive seeds, else the seeds separated by commas
    """
    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _seeds_by_row(runs: list[Run], held_out_seeds: frozenset[int]) -> dict[str, list[int]]:
    """
    :return: The seeds of ``runs`` under the label of their table row (held-out seeds in rows of their own), rows in
        the order of ``runs``
    """
    seeds: dict[str, list[int]] = {}
    for run in runs:
        seeds.setdefault(row_label(run.algo, run.variant, run.seed in held_out_seeds), []).append(run.seed)
    return seeds


def summary_markdown(
    evaluations: pd.DataFrame,
    settings: Settings,
    reward_threshold: float | None,
    held_out_seeds: frozenset[int] = frozenset(),
    command: str | None = None,
    unfinished: list[Run] | None = None,
) -> str:
    """
    :param evaluations: Every evaluation of every run
    :param settings: Env, budget and evaluation protocol of the comparison
    :param reward_threshold: The env's reward threshold (``env.spec.reward_threshold``), if any
    :param held_out_seeds: Seeds reported in rows of their own (never used to tune the entries)
    :param command: The command that reproduces the comparison, stated above the table
    :param unfinished: Runs of the comparison not finished yet (not in ``evaluations``), listed under the table
    :return: A markdown table, one row per (algorithm, variant, seed group), then the final return of every seed
    """
    finals = final_rows(evaluations)
    # Rewards of order 1 (success rates) need more decimals than returns of order 100
    decimals = 1 if evaluations["mean_reward"].abs().max() >= 10 else 2
    reached = first_reaching(evaluations, reward_threshold) if reward_threshold is not None else None
    threshold_title = f"Steps / time to {reward_threshold:g} (median, reached)" if reward_threshold is not None else ""

    def number(value: float) -> str:
        return f"{value:.{decimals}f}"

    lines = [f"`{command}`", ""] if command else []
    lines += [
        f"**{settings.env_id}**: {settings.n_timesteps:,} steps per run, evaluation every {settings.eval_freq:,} steps "
        f"on {settings.eval_episodes} deterministic episodes; final = last evaluation; max = the best evaluation of each "
        f"run (Tianshou's metric), averaged over seeds; 95% confidence intervals by percentile bootstrap over seeds.",
        "",
        "| Algorithm | Seeds | Final (mean [95% CI]) | IQM [95% CI] | Max over training (mean) "
        + (f"| {threshold_title} " if reached is not None else "")
        + "| Train time (s) | FPS |",
        "|---|---|---|---|---|" + ("---|" if reached is not None else "") + "---|---|",
    ]
    per_seed = []
    finals = finals.assign(held_out=finals["seed"].isin(held_out_seeds))
    for (algo, variant, held_out), runs in finals.groupby(["algo", "variant", "held_out"], sort=False):
        scores = runs["mean_reward"].to_numpy()
        seeds = sorted(runs["seed"])
        label = row_label(algo, variant)
        if len(scores) > 1:
            mean, low, high = mean_with_ci(scores)
            iqm, iqm_low, iqm_high = iqm_with_ci(scores)
            final_cell = f"{number(mean)} [{number(low)}, {number(high)}]"
            iqm_cell = f"{number(iqm)} [{number(iqm_low)}, {number(iqm_high)}]"
        else:
            final_cell, iqm_cell = number(scores[0]), "n/a (1 seed)"
        group = evaluations[(evaluations["algo"] == algo) & (evaluations["variant"] == variant)]
        maxima = group[group["seed"].isin(seeds)].groupby("seed")["mean_reward"].max()
        threshold_cell = ""
        if reached is not None:
            first = reached.loc[(algo, variant)].loc[seeds].dropna()
            if len(first):
                median_steps, median_time = first["timesteps"].median(), first["time_s"].median()
                threshold_cell = f"| {median_steps:,.0f} / {median_time:,.0f} s ({len(first)}/{len(scores)}) "
            else:
                threshold_cell = f"| never (0/{len(scores)}) "
        fps = (runs["timesteps"] / runs["time_s"]).mean()
        seeds_cell = f"{seed_list(seeds)} (held out)" if held_out else seed_list(seeds)
        lines.append(
            f"| {label} | {seeds_cell} | {final_cell} | {iqm_cell} | {number(maxima.mean())} {threshold_cell}"
            f"| {runs['time_s'].mean():.0f} | {fps:,.0f} |"
        )
        scores_by_seed = zip(runs["seed"], scores, strict=True)
        per_seed.append(
            f"- {row_label(algo, variant, held_out)}: "
            + ", ".join(f"{seed}: {number(score)}" for seed, score in scores_by_seed)
        )
    if unfinished:
        per_seed += ["", "Not finished yet, so not in the table above (the command above trains them):", ""]
        per_seed += [
            f"- {label}: {'seed' if len(seeds) == 1 else 'seeds'} {seed_list(sorted(seeds))}"
            for label, seeds in _seeds_by_row(unfinished, held_out_seeds).items()
        ]
    # Other libraries' numbers for the task, in a table of their own (their budgets, metrics and env versions)
    published = published_markdown(settings.env_id)
    sections = [*lines, "", "Final return of each seed:", "", *per_seed, *(["", published] if published else [])]
    return "\n".join(sections).rstrip("\n") + "\n"


def learning_curves(
    evaluations: pd.DataFrame,
    settings: Settings,
    reward_threshold: float | None,
    held_out_seeds: frozenset[int] = frozenset(),
) -> Figure:
    """
    The mean evaluation reward of each row of the table (algorithm and variant; held-out seeds apart, dashed, in
    the colour of their row) against env steps, with the bootstrap 95% band of that mean over seeds (each run
    interpolated on the evaluation grid; the band stays within the seeds' range).

    :param evaluations: Every evaluation of every run
    :param settings: Env, budget and evaluation protocol of the comparison
    :param reward_threshold: The env's reward threshold, drawn as a dashed line if any
    :param held_out_seeds: Seeds plotted in curves of their own, as the table reports them in rows of their own
    :return: The figure
    """
    grid = np.arange(0, settings.n_timesteps + 1, settings.eval_freq)
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
    evaluations = evaluations.assign(held_out=evaluations["seed"].isin(held_out_seeds))
    colours: dict[tuple[str, str], ColorType] = {}
    for (algo, variant, held_out), runs in evaluations.groupby(["algo", "variant", "held_out"], sort=False):
        curves = np.array([np.interp(grid, run["timesteps"], run["mean_reward"]) for _, run in runs.groupby("seed")])
        mean, low, high = bootstrap_interval(curves, lambda runs: runs.mean(axis=0))
        seeds = f"{len(curves)} seed" + ("s" if len(curves) > 1 else "")
        label = f"{row_label(algo, variant, held_out)} ({seeds})"
        (line,) = axes.plot(grid, mean, label=label, color=colours.get((algo, variant)), linestyle="--" if held_out else "-")
        colours.setdefault((algo, variant), line.get_color())
        axes.fill_between(grid, low, high, color=line.get_color(), alpha=0.2)
    if reward_threshold is not None:
        axes.axhline(reward_threshold, color="gray", linestyle="--", label="reward threshold")
    axes.set(title=settings.env_id, xlabel="env steps", ylabel=f"mean reward ({settings.eval_episodes} episodes)")
    axes.legend()
    return figure
