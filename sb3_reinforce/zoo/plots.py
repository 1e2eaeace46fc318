"""
rl-zoo3's plotting commands, made to write files: they draw with matplotlib's Agg backend (no window, no display
needed) and save their figures, so that they work the same on a desktop, over ssh and in CI.
rl-zoo3 draws; these wrappers only choose the backend, name the files and repair what rl-zoo3 gets wrong on one run.
"""

import argparse
import os
import pickle
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from rl_zoo3 import plots as zoo_plots

# rl-zoo3's defaults
EPISODE_WINDOW = 100
Y_AXIS = "reward"

PLOT_TRAIN_NOTE = """\
python -m sb3_reinforce.zoo plot_train also takes:
  -o OUTPUT, --output OUTPUT
                        Image file to write (format from its suffix; default: <exp-folder>/<algo>/<env>_<y-axis>.png).
                        No window opens: the figure is drawn off-screen and saved."""
ALL_PLOTS_NOTE = """\
python -m sb3_reinforce.zoo all_plots: -o NAME writes NAME.pkl (input of plot_from_file) and one learning curve per env,
NAME_<env>.png; no window opens. A run counts once its evaluations.npz holds 2 evaluations or more
(train evaluates every --eval-freq steps)."""
PLOT_FROM_FILE_NOTE = """\
python -m sb3_reinforce.zoo plot_from_file: the format is -o's suffix unless --format is given; without -o, writes
the input's name with the suffix of --format (default png): results.pkl -> results.png. No window opens."""


def run_with_args(command: Callable[[], object], prog: str, args: list[str]) -> None:
    """
    Run one of rl-zoo3's commands, which parse ``sys.argv``.

    :param command: rl-zoo3's function
    :param prog: Program name shown in its usage and errors
    :param args: Its options
    """
    saved_argv = sys.argv
    sys.argv = [prog, *args]
    try:
        command()
    finally:
        sys.argv = saved_argv


@contextmanager
def off_screen() -> Iterator[None]:
    """
    Draw with the Agg backend on fresh figures; rl-zoo3's ``plt.show()`` does nothing there (and says nothing).
    Nor does an empty legend: the wrappers say when a plot is empty.
    """
    plt.switch_backend("Agg")
    plt.close("all")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*non-interactive, and thus cannot be shown")
            warnings.filterwarnings("ignore", message="No artists with labels found to put in legend")
            yield
    finally:
        plt.close("all")


def file_name(text: str) -> str:
    """
    :param text: An env id (``ALE/Pong-v5``, ``module:Env-v0``)
    :return: The same, usable as (part of) a file name
    """
    return re.sub(r"[^\w.-]", "-", text)


def save_figure(figure: Figure, path: str) -> None:
    """
    :param figure: The figure
    :param path: File to write, its format given by its suffix (png if none)
    """
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    figure.savefig(path, format=None if os.path.splitext(path)[1] else "png")
    print(f"Saved the plot to {path}")


def plot_train(prog: str, args: list[str]) -> None:
    """
    rl-zoo3's ``plot_train`` (training reward, episode length or success rate of each run, averaged over a window
    of ``-w`` episodes), saved to ``--output`` instead of shown.

    :param prog: Program name shown in usage and errors
    :param args: rl-zoo3's options, plus ``-o/--output`` (default ``<exp-folder>/<algo>/<env>_<y-axis>.png``)
    """
    output_parser = argparse.ArgumentParser(add_help=False)
    output_parser.add_argument("-o", "--output")
    known, zoo_args = output_parser.parse_known_args(args)
    with off_screen():
        run_with_args(zoo_plots.plot_train, prog, zoo_args)
        # rl-zoo3 checked them: required, one value each but --env
        parser = argparse.ArgumentParser(add_help=False)
        parser.add_argument("-a", "--algo")
        parser.add_argument("-e", "--env", nargs="+")
        parser.add_argument("-f", "--exp-folder")
        parser.add_argument("-y", "--y-axis", default=Y_AXIS)
        parser.add_argument("-w", "--episode-window", type=int, default=EPISODE_WINDOW)
        options, _ = parser.parse_known_args(zoo_args)
        output = known.output or os.path.join(
            options.exp_folder, options.algo, file_name(f"{'_'.join(options.env)}_{options.y_axis}") + ".png"
        )
        figure = plt.gcf()
        save_figure(figure, output)
        if not any(axes.get_lines() for axes in figure.axes):
            print(
                f"Warning: the plot is empty: no run of {' '.join(options.env)} in {options.exp_folder}/{options.algo} "
                f"has {options.episode_window} episodes or more (-w/--episode-window)",
                file=sys.stderr,
            )


def evaluation_counts(exp_folder: str, algo: str, env: str) -> dict[str, int]:
    """
    :param exp_folder: Log folder
    :param algo: Algorithm
    :param env: Env id
    :return: The number of evaluations in each run folder that ``all_plots`` reads (0: no ``evaluations.npz``)
    """
    log_path = os.path.join(exp_folder, algo)
    if not os.path.isdir(log_path):
        return {}
    counts = {}
    # The folders that rl-zoo3's all_plots reads
    for name in sorted(os.listdir(log_path)):
        run_folder = os.path.join(log_path, name)
        if env in name and os.path.isdir(run_folder):
            evaluations = os.path.join(run_folder, "evaluations.npz")
            counts[run_folder] = len(np.load(evaluations)["timesteps"]) if os.path.isfile(evaluations) else 0
    return counts


def one_result_per_run(results_file: str) -> None:
    """
    Repair the ``last_evals`` of rl-zoo3's post-processed results: for a single run (or one-episode evaluations)
    rl-zoo3 squeezes them to a scalar, which its ``plot_from_file`` skips before failing on
    ``min() arg is an empty sequence``. The last row of ``mean_per_eval`` holds the same scores, one per run.

    :param results_file: The ``.pkl`` file written by rl-zoo3's ``all_plots``
    """
    with open(results_file, "rb") as file:
        results = pickle.load(file)
    for env, env_results in results.items():
        if env == "results_table":
            continue
        for key_results in env_results.values():
            if np.ndim(key_results["last_evals"]) == 0:
                key_results["last_evals"] = key_results["mean_per_eval"][-1]
    with open(results_file, "wb") as file:
        pickle.dump(results, file)


def all_plots(prog: str, args: list[str]) -> None:
    """
    rl-zoo3's ``all_plots`` (evaluation curves and final-score table of several runs). With ``-o NAME``, writes
    ``NAME.pkl`` (one score per run, single runs included) and each env's curve as ``NAME_<env>.png``.
    Says which algorithm and env have no run with the 2 evaluations that rl-zoo3 needs (their score reads 0.0 +/- 0.0).

    :param prog: Program name shown in usage and errors
    :param args: rl-zoo3's options
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-a", "--algos", nargs="+", default=[])
    parser.add_argument("-e", "--env", nargs="+", default=[])
    parser.add_argument("-f", "--exp-folders", nargs="+", default=[])
    parser.add_argument("-o", "--output")
    options, _ = parser.parse_known_args(args)
    with off_screen():
        run_with_args(zoo_plots.all_plots, prog, args)
        for exp_folder in options.exp_folders:
            for algo in options.algos:
                for env in options.env:
                    counts = evaluation_counts(exp_folder, algo.lower(), env)
                    if not counts:
                        print(f"Note: no run of {env} in {os.path.join(exp_folder, algo.lower())}", file=sys.stderr)
                    elif max(counts.values()) < 2:
                        found = ", ".join(f"{folder}: {count}" for folder, count in counts.items())
                        print(
                            f"Note: no result for {algo} on {env} in {exp_folder}: all_plots needs runs with 2 evaluations "
                            f"or more (evaluations found: {found}); train evaluates every --eval-freq steps",
                            file=sys.stderr,
                        )
        if options.output is None:
            print("Nothing written: -o NAME writes NAME.pkl (for plot_from_file) and NAME_<env>.png", file=sys.stderr)
            return
        one_result_per_run(f"{options.output}.pkl")
        for env in options.env:
            # rl-zoo3's figure of the env's curves
            save_figure(plt.figure(f"Results {env}"), f"{options.output}_{file_name(env)}.png")


def plot_from_file(prog: str, args: list[str]) -> None:
    """
    rl-zoo3's ``plot_from_file`` (final scores of the ``.pkl`` written by ``all_plots``), saved rather than shown.

    :param prog: Program name shown in usage and errors
    :param args: rl-zoo3's options; ``-o`` defaults to the input file with the suffix of ``--format``,
        ``--format`` to the suffix of ``-o`` (rl-zoo3 writes svg whatever ``-o``'s suffix)
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-i", "--input")
    parser.add_argument("-o", "--output")
    parser.add_argument("--format")
    options, _ = parser.parse_known_args(args)
    extra_args = []
    if options.format is None:
        suffix = os.path.splitext(options.output or "")[1].lstrip(".")
        options.format = suffix or ("png" if options.output is None else "svg")
        extra_args += ["--format", options.format]
    if options.output is None and options.input is not None:
        options.output = f"{options.input.removesuffix('.pkl')}.{options.format}"
        extra_args += ["--output", options.output]
    with off_screen():
        run_with_args(zoo_plots.plot_from_file, prog, [*args, *extra_args])
    if options.output is not None:
        print(f"Saved the plot to {options.output}")
