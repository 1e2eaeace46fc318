"""
``python -m sb3_reinforce.zoo <command> [rl-zoo3 options]`` (console script ``sb3-reinforce-zoo``): rl-zoo3's
command line with REINFORCE registered as ``--algo reinforce`` and this package's hyperparameter files as default.
"""

import argparse
import runpy
import sys
from collections.abc import Callable

from rl_zoo3.enjoy import enjoy
from rl_zoo3.plots import all_plots, plot_from_file, plot_train
from rl_zoo3.train import train

from sb3_reinforce.zoo.hyperparams import default_config_file
from sb3_reinforce.zoo.registration import register_reinforce


def record_video() -> None:
    """rl-zoo3's ``record_video`` script, which only runs as ``__main__``."""
    runpy.run_module("rl_zoo3.record_video", run_name="__main__", alter_sys=True)


COMMANDS: dict[str, Callable[[], None]] = {
    "train": train,
    "enjoy": enjoy,
    "record_video": record_video,
    "plot_train": plot_train,
    "plot_from_file": plot_from_file,
    "all_plots": all_plots,
}


def with_default_config(train_args: list[str]) -> list[str]:
    """
    :param train_args: Options of ``train``
    :return: The same options, plus ``--conf-file zoo_configs/<algo>.yml`` when the user gave no ``-conf``
        and this package's file has an entry for the env (otherwise rl-zoo3 reads its own file)
    """
    parser = argparse.ArgumentParser(add_help=False)
    # Same defaults as rl-zoo3's train()
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("-conf", "--conf-file")
    known, _ = parser.parse_known_args(train_args)
    config_file = default_config_file(known.algo, known.env)
    if known.conf_file is not None or config_file is None:
        return train_args
    return [*train_args, "--conf-file", config_file]


def main(argv: list[str] | None = None) -> None:
    """
    Run one of rl-zoo3's commands.

    :param argv: ``[command, *options]``; default: ``sys.argv[1:]``
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        raise SystemExit(f"usage: sb3-reinforce-zoo {{{','.join(COMMANDS)}}} [options]   (options: <command> --help)")
    command, args = argv[0], argv[1:]
    if command == "train":
        args = with_default_config(args)
    register_reinforce()
    # rl-zoo3's commands parse sys.argv
    saved_argv = sys.argv
    sys.argv = [f"sb3-reinforce-zoo {command}", *args]
    try:
        COMMANDS[command]()
    finally:
        sys.argv = saved_argv


if __name__ == "__main__":
    main()
