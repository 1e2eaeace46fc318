"""
``python -m sb3_reinforce.zoo <command> [rl-zoo3 options]`` (console script ``sb3-reinforce-zoo``): rl-zoo3's
command line with REINFORCE registered as ``--algo reinforce``, this package's hyperparameter files as default,
one torch thread per training process, and plotting commands that write files (``sb3_reinforce.zoo.plots``).
"""

import argparse
import os
import runpy
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import rl_zoo3.train
import torch as th
from rl_zoo3.enjoy import enjoy
from rl_zoo3.exp_manager import ExperimentManager

from sb3_reinforce.zoo import plots
from sb3_reinforce.zoo.hyperparams import default_config_file
from sb3_reinforce.zoo.registration import register_reinforce

# rl-zoo3's evaluation interval (train --eval-freq)
EVAL_FREQ = 25_000
# Evaluations of a run shorter than 5 * EVAL_FREQ steps (-n) when --eval-freq is not given
MIN_EVALUATIONS = 5

SUMMARIES = {
    "train": "Train an agent (rl-zoo3's train; one torch thread unless --num-threads N)",
    "enjoy": "Run a trained agent and print its episode rewards (-f logs: the folder train writes to)",
    "record_video": "Record a video of a trained agent (needs moviepy)",
    "plot_train": "Plot the training reward of each run to a PNG file (-o/--output)",
    "all_plots": "Evaluation curves and score table of several runs; -o NAME writes NAME.pkl and NAME_<env>.png",
    "plot_from_file": "Plot the final scores of an all_plots NAME.pkl to an image file",
}
DESCRIPTION = """\
rl-zoo3's command line with REINFORCE registered (--algo reinforce) and this package's zoo_configs/<algo>.yml
as default hyperparameters. Options of a command: python -m sb3_reinforce.zoo <command> --help"""
TRAIN_NOTE = f"""\
python -m sb3_reinforce.zoo train changes these rl-zoo3 defaults:
  --num-threads         1 (one torch thread: for small networks on few cores, several threads are
                        ~10x slower); -1: torch's default
  --eval-freq           {EVAL_FREQ}, or n_timesteps / {MIN_EVALUATIONS} when -n is below {MIN_EVALUATIONS * EVAL_FREQ}
                        (all_plots needs 2 evaluations)
  --conf-file           the packaged zoo_configs/<algo>.yml when it has an entry for the env
A run that saves no model (failed, or -optimize) leaves no run folder."""


def program_name() -> str:
    """:return: How the user started this program: ``sb3-reinforce-zoo`` (console script) or ``python -m ...``"""
    return "sb3-reinforce-zoo" if os.path.basename(sys.argv[0]) == "sb3-reinforce-zoo" else "python -m sb3_reinforce.zoo"


def train_options(train_args: list[str]) -> argparse.Namespace:
    """
    :param train_args: Options of ``train``
    :return: The options this module reads, as strings, with rl-zoo3's defaults (other options are ignored;
        rl-zoo3's parser checks them all)
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("-conf", "--conf-file")
    parser.add_argument("-n", "--n-timesteps", default="-1")
    parser.add_argument("--num-threads")
    parser.add_argument("--eval-freq")
    known, _ = parser.parse_known_args(train_args)
    return known


def integer(text: str | None) -> int | None:
    """
    :param text: An option's value
    :return: The value as an int; None if it is not one (rl-zoo3's parser will say so)
    """
    try:
        return int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def with_default_config(train_args: list[str]) -> list[str]:
    """
    :param train_args: Options of ``train``
    :return: The same options, plus ``--conf-file zoo_configs/<algo>.yml`` when the user gave no ``-conf``
        and this package's file has an entry for the env (otherwise rl-zoo3 reads its own file)
    """
    known = train_options(train_args)
    config_file = default_config_file(known.algo, known.env)
    if known.conf_file is not None or config_file is None:
        return train_args
    return [*train_args, "--conf-file", config_file]


def with_default_threads(train_args: list[str]) -> list[str]:
    """
    :param train_args: Options of ``train``
    :return: The same options, plus ``--num-threads 1`` when the user gave no ``--num-threads``
        (rl-zoo3 keeps torch's default, as many threads as cores: ~10x slower for small networks on 2 cores)
    """
    if train_options(train_args).num_threads is not None:
        return train_args
    return [*train_args, "--num-threads", "1"]


def with_default_eval_freq(train_args: list[str]) -> list[str]:
    """
    :param train_args: Options of ``train``
    :return: The same options, plus ``--eval-freq n_timesteps // 5`` when the user gave no ``--eval-freq`` and a
        budget ``-n`` under 5 times rl-zoo3's interval (25,000 steps): a shorter run would have fewer than
        2 evaluations, and all_plots would read no score from it
    """
    known = train_options(train_args)
    n_timesteps = integer(known.n_timesteps)
    if known.eval_freq is not None or n_timesteps is None or not 0 < n_timesteps < MIN_EVALUATIONS * EVAL_FREQ:
        return train_args
    return [*train_args, "--eval-freq", str(max(n_timesteps // MIN_EVALUATIONS, 1))]


class RunFolderRecorder(ExperimentManager):
    """rl-zoo3's ``ExperimentManager``, recording the run folders it creates in ``created``."""

    created: ClassVar[list[str]] = []

    def create_log_folder(self) -> None:
        if not os.path.isdir(self.save_path):
            self.created.append(self.save_path)
        super().create_log_folder()


@contextmanager
def removing_runs_without_model() -> Iterator[None]:
    """
    Make rl-zoo3's ``train()`` record the run folder it creates and, whether training succeeds or fails, remove it
    when it holds no model (``*.zip``): a train that failed before saving one, or ``-optimize`` (whose trials are
    not saved there). ``enjoy`` loads the latest run: an empty one would fail with "No model found".
    Only a folder this process created is removed.
    """
    RunFolderRecorder.created.clear()
    rl_zoo3.train.ExperimentManager = RunFolderRecorder  # type: ignore[misc]
    try:
        yield
    finally:
        rl_zoo3.train.ExperimentManager = ExperimentManager  # type: ignore[misc]
        for run_folder in RunFolderRecorder.created:
            if os.path.isdir(run_folder) and not any(Path(run_folder).rglob("*.zip")):
                shutil.rmtree(run_folder)
                print(f"Removed {run_folder}: the run saved no model")


def train(prog: str, args: list[str]) -> None:
    """
    rl-zoo3's ``train`` with this package's defaults (``TRAIN_NOTE``).

    :param prog: Program name shown in usage and errors
    :param args: Options of ``train``
    """
    args = with_default_eval_freq(with_default_threads(with_default_config(args)))
    # rl-zoo3 sets it (when > 0) after parsing its options; None: not an int, rl-zoo3 will say so
    num_threads = integer(train_options(args).num_threads)
    if num_threads is not None and not {"-h", "--help"} & set(args):
        if num_threads > 0:
            print(f"Torch threads: {num_threads} (--num-threads N to change)")
        else:
            print(f"Torch threads: {th.get_num_threads()} (torch's default)")
    with removing_runs_without_model():
        plots.run_with_args(rl_zoo3.train.train, prog, args)


def record_video(prog: str, args: list[str]) -> None:
    """
    rl-zoo3's ``record_video`` script, which only runs as ``__main__``.

    :param prog: Program name shown in usage and errors
    :param args: Its options
    """
    plots.run_with_args(lambda: runpy.run_module("rl_zoo3.record_video", run_name="__main__"), prog, args)


def run_enjoy(prog: str, args: list[str]) -> None:
    """
    rl-zoo3's ``enjoy``.

    :param prog: Program name shown in usage and errors
    :param args: Its options
    """
    plots.run_with_args(enjoy, prog, args)


COMMANDS: dict[str, Callable[[str, list[str]], None]] = {
    "train": train,
    "enjoy": run_enjoy,
    "record_video": record_video,
    "plot_train": plots.plot_train,
    "all_plots": plots.all_plots,
    "plot_from_file": plots.plot_from_file,
}
# Printed after rl-zoo3's help of the command: what this program changes
HELP_NOTES = {
    "train": TRAIN_NOTE,
    "plot_train": plots.PLOT_TRAIN_NOTE,
    "all_plots": plots.ALL_PLOTS_NOTE,
    "plot_from_file": plots.PLOT_FROM_FILE_NOTE,
}


def command_parser(prog: str) -> argparse.ArgumentParser:
    """
    :param prog: Program name
    :return: A parser that shows the list of commands (``--help``) and reports errors; the commands parse their
        own options
    """
    commands = "\n".join(f"  {command:<16}{summary}" for command, summary in SUMMARIES.items())
    return argparse.ArgumentParser(
        prog=prog,
        usage=f"{prog} [-h] <command> [options]",
        description=DESCRIPTION,
        epilog=f"commands:\n{commands}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: list[str] | None = None) -> None:
    """
    Run one of rl-zoo3's commands.

    :param argv: ``[command, *options]``; default: ``sys.argv[1:]``
    """
    argv = sys.argv[1:] if argv is None else argv
    prog = program_name()
    parser = command_parser(prog)
    if not argv:
        parser.print_help(sys.stderr)
        parser.exit(2)
    if argv[0] in ("-h", "--help"):
        parser.print_help()
        parser.exit(0)
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        parser.error(f"unknown command {command!r} (choose from {', '.join(COMMANDS)})")
    # Before rl-zoo3 builds its parsers: they fix the --algo choices from ALGOS
    register_reinforce()
    try:
        COMMANDS[command](f"{prog} {command}", args)
    except SystemExit as exit_:
        if exit_.code in (None, 0) and command in HELP_NOTES and {"-h", "--help"} & set(args):
            print(f"\n{HELP_NOTES[command]}")
        raise


if __name__ == "__main__":
    main()
