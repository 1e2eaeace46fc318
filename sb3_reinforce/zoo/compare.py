"""
Compare zoo-configured algorithms: same envs, seeds and step budget, periodic deterministic evaluations, one report
per env (see ``sb3_reinforce.zoo.results`` for the output folder and ``sb3_reinforce.zoo.report`` for the report).

Every finished run is written atomically to ``<output>/<env>/runs/``: an interrupted comparison resumes where it
stopped when run again with the same output folder. Each run is trained by ``sb3_reinforce.zoo.training``, in this
process, in ``--jobs`` processes or, with ``--cluster ADDRESS``, on the workers of a Dask cluster
(``sb3_reinforce.zoo.cluster``).
"""

import argparse
import os
import re
import shlex
import shutil
import signal
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import active_children, get_context
from pathlib import Path
from typing import Any

import gymnasium as gym
import pandas as pd
import torch as th
import yaml
from rl_zoo3.utils import ALGOS
from tqdm.auto import tqdm

from sb3_reinforce.zoo.cluster import ClusterRun, connect, run_on_cluster
from sb3_reinforce.zoo.hyperparams import entry_hyperparameters, get_hyperparameters, get_n_timesteps
from sb3_reinforce.zoo.registration import register_reinforce
from sb3_reinforce.zoo.report import learning_curves, summary_markdown
from sb3_reinforce.zoo.results import (
    Run,
    Settings,
    read_run_hyperparameters,
    read_runs,
    read_settings,
    record_settings,
    run_file_problem,
    run_path,
)
from sb3_reinforce.zoo.training import RunInterruptedError, train_and_evaluate

# Steps per second of one run on one core of the project's 2-core machine, slowest to fastest entry measured (PPO on
# LunarLander to REINFORCE on CartPole): the range of the cost estimate printed before a comparison starts
ESTIMATE_FPS = (1_000, 8_000)


def drop_damaged_runs(output: Path, runs: list[Run], settings: Settings) -> None:
    """
    Check the result file of every finished run; remove (and name) the damaged ones, so that their runs are redone.

    :param output: Output folder of the env's comparison
    :param runs: Every run of the comparison
    :param settings: Their settings
    """
    for run in runs:
        path = run_path(output, run)
        if path.exists() and (problem := run_file_problem(path, run, settings)) is not None:
            print(f"{path} is damaged ({problem}): its run is redone", file=sys.stderr)
            path.unlink()


def check_hyperparameters(output: Path, runs: list[Run], settings: Settings) -> None:
    """
    Check that every run started in the folder (finished or not) was started with the hyperparameters its entry (and
    ``--set`` row) has now. Runs started by versions that did not record them are taken as they are; a record that
    cannot be read is not.

    :param output: Output folder of the env's comparison
    :param runs: Every run of the comparison
    :param settings: Their settings
    :raises SystemExit: naming the runs started with other hyperparameters and what differs, or whose record is damaged
    """
    entries: dict[str, dict[str, Any]] = {}
    changed = []
    for run in runs:
        try:
            recorded = read_run_hyperparameters(output, run)
        except ValueError as error:
            changed.append(f"{run.name} (its record: {error})")
            continue
        if recorded is None:
            continue
        key = f"{run.algo}[{run.variant}]"
        if key not in entries:
            entries[key] = entry_hyperparameters(run.algo, settings.env_id, run.overrides)
        if recorded != entries[key]:
            names = sorted(set(recorded) | set(entries[key]))
            differences = [
                f"{name}: {recorded.get(name, 'unset')} then, {entries[key].get(name, 'unset')} now"
                for name in names
                if recorded.get(name, "unset") != entries[key].get(name, "unset")
            ]
            changed.append(f"{run.name} ({'; '.join(differences)})")
    if changed:
        raise SystemExit(
            f"{output}: runs started with other hyperparameters than their entries have now, or not known to have "
            f"been: {', '.join(changed)}. Write this comparison to another --output, or remove those runs' files "
            "(runs/<run>.* and checkpoints/<run>.pkl) to train them again."
        )


def pending_runs(output: Path, runs: list[Run], settings: Settings) -> list[Run]:
    """
    :param output: Output folder of the env's comparison
    :param runs: Every run of the comparison
    :param settings: Their settings
    :return: The runs with no result file, once the damaged files are removed (see ``drop_damaged_runs``) and the
        hyperparameters of the runs started are checked (``check_hyperparameters``)
    """
    drop_damaged_runs(output, runs, settings)
    check_hyperparameters(output, runs, settings)
    return [run for run in runs if not run_path(output, run).exists()]


def run_pending(runs: list[Run], settings: Settings, output: Path, jobs: int, device: str, num_threads: int) -> None:
    """
    Train the runs that have no result file yet, ``jobs`` at a time, with a progress bar over all runs.
    SIGTERM or SIGINT stops every run under way with a checkpoint and starts no other.

    :param runs: Every run of the env's comparison
    :raises RunInterruptedError: if the runs were stopped
    """
    pending = pending_runs(output, runs, settings)
    with tqdm(total=len(runs), initial=len(runs) - len(pending), desc=settings.env_id, unit="run") as progress:
        if jobs == 1:
            for run in pending:
                progress.set_postfix_str(f"{run.name}")
                train_and_evaluate(run, settings, output, device, num_threads)
                progress.update()
            return
        # spawn: no fork of a parent that already holds torch threads
        pool = ProcessPoolExecutor(jobs, mp_context=get_context("spawn"))
        # SIGTERM reaches this process alone: turn it into the KeyboardInterrupt of a Ctrl-C
        handler = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            futures = [pool.submit(train_and_evaluate, run, settings, output, device, num_threads) for run in pending]
            for future in as_completed(futures):
                future.result()
                progress.update()
        except KeyboardInterrupt:
            # The workers checkpoint their runs and refuse queued ones
            for worker in active_children():
                if worker.pid is not None:
                    os.kill(worker.pid, signal.SIGTERM)
            raise RunInterruptedError("stopped by a signal: every run under way wrote its checkpoint") from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            signal.signal(signal.SIGTERM, handler)


class NothingToReportError(Exception):
    """A report asked for (``--report-only``) where no run of the comparison has finished."""


def write_report(
    output: Path,
    runs: list[Run],
    held_out_seeds: frozenset[int],
    command: str | None,
    unfinished: list[Run] | None = None,
) -> pd.DataFrame:
    """
    Render ``evaluations.csv``, ``summary.md`` and ``learning_curves.png`` of an env's output folder from its run files.

    :param output: Output folder of the env's comparison
    :param runs: The runs to report, all finished
    :param held_out_seeds: Seeds reported in rows of their own
    :param command: The command that reproduces the comparison, stated in the summary
    :param unfinished: Runs of the comparison left out of the report because they have not finished, listed under it
    :return: Every evaluation of every run
    """
    settings = read_settings(output)
    evaluations = read_runs(output, runs)
    evaluations.to_csv(output / "evaluations.csv", index=False)
    reward_threshold = gym.spec(settings.env_id).reward_threshold
    summary = summary_markdown(evaluations, settings, reward_threshold, held_out_seeds, command, unfinished or [])
    (output / "summary.md").write_text(summary)
    learning_curves(evaluations, settings, reward_threshold, held_out_seeds).savefig(output / "learning_curves.png", dpi=120)
    return evaluations


def plan_comparison(
    env_id: str,
    algos: list[str],
    seeds: list[int],
    output: Path,
    n_timesteps: int | None = None,
    eval_freq: int | None = None,
    eval_episodes: int = 10,
    variants: list[dict[str, Any]] | None = None,
    held_out_seeds: list[int] | None = None,
) -> tuple[Settings, list[Run]]:
    """
    Record the settings of an env's comparison in its output folder (or check them against the recorded ones).

    The parameters are those of ``compare``.

    :return: The settings and every run of the comparison, finished or not
    """
    register_reinforce()
    n_timesteps = n_timesteps or max(get_n_timesteps(algo, env_id) for algo in algos)
    settings = Settings(env_id, n_timesteps, eval_freq or max(n_timesteps // 20, 1), eval_episodes)
    record_settings(output, settings)
    all_seeds = [*seeds, *(held_out_seeds or [])]
    runs = [Run(algo, seed, overrides) for algo in algos for overrides in [{}, *(variants or [])] for seed in all_seeds]
    return settings, runs


def compare(
    env_id: str,
    algos: list[str],
    seeds: list[int],
    output: Path,
    n_timesteps: int | None = None,
    eval_freq: int | None = None,
    eval_episodes: int = 10,
    variants: list[dict[str, Any]] | None = None,
    held_out_seeds: list[int] | None = None,
    jobs: int = 1,
    device: str = "cpu",
    num_threads: int = 1,
    command: str | None = None,
    train: bool = True,
) -> pd.DataFrame:
    """
    Train every algorithm (and variant) on every seed (resuming: finished runs are kept), then write
    ``evaluations.csv``, ``summary.md`` and ``learning_curves.png`` to ``output``. With ``train=False``, only the
    report of the runs finished so far, the others listed under its table.

    :param env_id: Gymnasium id of the environment
    :param algos: rl-zoo3 names of the algorithms, each trained with its zoo hyperparameters
    :param seeds: Seeds of every algorithm and variant
    :param output: Output folder of this env
    :param n_timesteps: Training budget of every run; default: the largest ``n_timesteps`` of the algorithms' configs
    :param eval_freq: Evaluate every ``eval_freq`` env steps; default: 20 evaluations per run
    :param eval_episodes: Episodes per evaluation
    :param variants: Hyperparameter overrides, each adding a row per algorithm beside its zoo entry
    :param held_out_seeds: More seeds, reported in rows of their own (never used to tune the entries)
    :param jobs: Number of runs trained in parallel processes
    :param device: PyTorch device of the models
    :param num_threads: PyTorch threads per run
    :param command: The command that reproduces the comparison, stated in the summary
    :param train: Whether to train the unfinished runs (``False``: report the finished ones as they are)
    :return: Every evaluation of every reported run
    :raises NothingToReportError: with ``train=False``, if no run has finished
    """
    settings, runs = plan_comparison(
        env_id, algos, seeds, output, n_timesteps, eval_freq, eval_episodes, variants, held_out_seeds
    )
    if train:
        run_pending(runs, settings, output, jobs, device, num_threads)
        unfinished = []
    else:
        unfinished = pending_runs(output, runs, settings)
    unfinished_names = {run.name for run in unfinished}
    finished = [run for run in runs if run.name not in unfinished_names]
    if not finished:
        raise NothingToReportError(f"{env_id}: no run of this comparison has finished in {output} yet")
    return write_report(output, finished, frozenset(held_out_seeds or []), command, unfinished)


def train_on_cluster(args: argparse.Namespace, n_timesteps: dict[str, int]) -> None:
    """
    Train the unfinished runs of every env of a ``compare`` command line on the cluster at ``args.cluster``, all envs
    at once. The settings of each env's output folder are recorded (or checked) first, as without a cluster.

    :param args: The parsed command line
    :param n_timesteps: Budget per run of each env
    :raises SystemExit: if a run failed (the finished ones are kept) or a signal stopped the driver
    """
    tasks = []
    for env_id in args.env:
        output = (args.output / env_id).resolve()
        settings, runs = plan_comparison(
            env_id,
            args.algos,
            args.seeds,
            output,
            n_timesteps=n_timesteps[env_id],
            eval_freq=args.eval_freq,
            eval_episodes=args.eval_episodes,
            variants=args.set,
            held_out_seeds=args.held_out_seeds,
        )
        tasks += [ClusterRun(run, settings, output) for run in pending_runs(output, runs, settings)]
    if not tasks:
        return
    with connect(args.cluster) as client:
        workers = client.nthreads()
        print(f"Dask scheduler {args.cluster}: {len(workers)} workers, {sum(workers.values())} threads", flush=True)
        try:
            failed = run_on_cluster(client, tasks, args.device, args.num_threads)
        except RunInterruptedError as error:
            raise SystemExit(f"{error}. Run the same command again to continue once they are done.") from None
    if failed:
        raise SystemExit(
            f"{len(failed)} run(s) failed, see above: {', '.join(task.name for task in failed)}. The other runs are "
            "kept: run the same command again to retry the failed ones."
        )


def parse_seeds(text: str) -> list[int]:
    """
    :param text: A seed (``"3"``) or an inclusive range (``"0-4"``)
    :return: The seeds
    """
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", text)
    if match is None or (match[2] is not None and int(match[2]) < int(match[1])):
        raise argparse.ArgumentTypeError(f"a seed is a non-negative int or a range such as 0-4, got {text!r}")
    first = int(match[1])
    return list(range(first, int(match[2] or first) + 1))


def parse_override(text: str) -> tuple[str, Any]:
    """
    :param text: ``name=value``, the value written as in a zoo YAML file (``n_episodes=16``, ``learning_rate=lin_1e-3``)
    :return: The name and the value
    """
    name, separator, value = text.partition("=")
    if not separator or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"a hyperparameter override is name=value, got {text!r}")
    parsed = yaml.safe_load(value)
    return name, float(parsed) if re.fullmatch(r"[-+]?\d*\.?\d+e[-+]?\d+", value) else parsed


def positive_int(text: str) -> int:
    """:return: ``text`` as an int >= 1 (argparse type)"""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}")
    return int(text)


def describe_grid(args: argparse.Namespace, n_timesteps: dict[str, int]) -> str:
    """
    :param args: The parsed command line
    :param n_timesteps: Budget per run of each env
    :return: The grid and a range of its cost, printed before training starts
    """
    n_variants = 1 + len(args.set)
    n_seeds = len(args.seeds) + len(args.held_out_seeds or [])
    runs_per_env = len(args.algos) * n_variants * n_seeds
    total_steps = sum(steps * runs_per_env for steps in n_timesteps.values())
    fastest, slowest = (total_steps / fps / 60 / args.jobs for fps in reversed(ESTIMATE_FPS))
    where = f"with --jobs {args.jobs}" if args.cluster is None else "on one cluster worker (divide by their number)"
    return (
        f"{len(n_timesteps)} env(s) x {len(args.algos)} algo(s) x {n_variants} variant(s) x {n_seeds} seed(s) = "
        f"{runs_per_env * len(n_timesteps)} runs, {total_steps:,} env steps in all; finished runs in {args.output} are "
        f"kept. At {ESTIMATE_FPS[0]:,}-{ESTIMATE_FPS[1]:,} steps/s per run {where}: about "
        f"{fastest:.0f}-{slowest:.0f} min."
    )


def make_parser() -> argparse.ArgumentParser:
    """:return: The command line parser of ``python -m sb3_reinforce.compare``"""
    parser = argparse.ArgumentParser(
        prog="python -m sb3_reinforce.compare",
        description="Train zoo-configured algorithms on the same envs, seeds and budget; write per env a CSV of every "
        "evaluation, a markdown table and learning curves. Example: python -m sb3_reinforce.compare --env CartPole-v1 "
        "--algos reinforce ppo --seeds 0-4 --jobs 2",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--env", nargs="+", required=True, help="Gymnasium environment ids")
    parser.add_argument("--algos", nargs="+", required=True, help="rl-zoo3 algorithm names (reinforce, ppo, trpo, a2c...)")
    parser.add_argument(
        "--seeds", nargs="+", type=parse_seeds, default=[[0, 1, 2, 3, 4]], help="seeds and ranges, e.g. 0-4 or 0 2 7"
    )
    parser.add_argument(
        "--held-out-seeds", nargs="+", type=parse_seeds, help="more seeds, reported in rows of their own, e.g. 100-104"
    )
    parser.add_argument(
        "--set",
        nargs="+",
        type=parse_override,
        action="append",
        metavar="NAME=VALUE",
        help="a variant row: hyperparameters replacing the entry's, for every algo (repeat --set for more rows)",
    )
    parser.add_argument("-n", "--n-timesteps", type=positive_int, help="budget per run (default: the configs' largest)")
    parser.add_argument("--eval-freq", type=positive_int, help="evaluate every N env steps (default: budget / 20)")
    parser.add_argument("--eval-episodes", type=positive_int, default=10, help="deterministic episodes per evaluation")
    parser.add_argument("--jobs", type=positive_int, default=1, help="runs trained in parallel processes")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write each env's report from the runs of the grid finished so far (a grid still under way; "
        "the runs left are listed under the table)",
    )
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="train the runs of every env as tasks of the Dask scheduler at ADDRESS (e.g. tcp://10.0.0.5:8786) instead "
        "of local processes; every worker must see --output at the same path (pip install 'sb3_reinforce[cluster]')",
    )
    parser.add_argument("--device", type=torch_device, default="cpu", help="PyTorch device")
    parser.add_argument("--num-threads", type=positive_int, default=1, help="PyTorch threads per run")
    parser.add_argument("--output", type=Path, default=Path("compare"), help="output folder, one sub-folder per env")
    parser.add_argument(
        "--results",
        type=Path,
        help="also copy each env's summary and curves to RESULTS/<env>.md and RESULTS/<env>.png (e.g. docs/results)",
    )
    return parser


def torch_device(text: str) -> str:
    """Argument type of ``--device``: a device name torch knows (``cpu``, ``cuda``, ``cuda:1``, ...)."""
    try:
        th.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"expected a PyTorch device such as cpu, cuda or cuda:1, got {text!r}") from None
    return text


def check_models(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """
    Build the model of every (env, algo, variant) of the grid once, before any run, so that a bad entry or ``--set``
    value is refused up front (with the algorithm's own error) rather than when its first run starts.

    :param parser: The command line's parser (its ``error`` exits with status 2)
    :param args: The parsed arguments
    """
    for env_id in args.env:
        for algo in args.algos:
            for overrides in [{}, *args.set]:
                try:
                    model = ALGOS[algo](**get_hyperparameters(algo, env_id, seed=0, overrides=overrides), device="cpu")
                except (TypeError, ValueError) as error:
                    parser.error(f"{algo} on {env_id} with {overrides or 'its zoo entry'}: {error}")
                # get_hyperparameters gave the model its env
                model.get_env().close()  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> None:
    """
    Command line of ``compare``.

    :param argv: Arguments; default: ``sys.argv[1:]``
    """
    argv = sys.argv[1:] if argv is None else argv
    parser = make_parser()
    args = parser.parse_args(argv)
    args.seeds = sorted({seed for seeds in args.seeds for seed in seeds})
    args.held_out_seeds = sorted({seed for seeds in args.held_out_seeds or [] for seed in seeds})
    for overrides in args.set or []:
        names = Counter(name for name, _ in overrides)
        if repeated := sorted(name for name, count in names.items() if count > 1):
            parser.error(f"--set names {', '.join(repeated)} more than once in one row")
    # One dict of overrides per --set (each a variant row)
    args.set = [dict(overrides) for overrides in args.set or []]
    if overlap := set(args.seeds) & set(args.held_out_seeds):
        parser.error(f"--seeds and --held-out-seeds share {sorted(overlap)}")
    if args.cluster is not None and args.jobs > 1:
        parser.error("--cluster trains the runs on the cluster's workers: it takes no --jobs")
    if args.report_only and (args.cluster is not None or args.jobs > 1):
        parser.error("--report-only trains nothing: it takes no --jobs or --cluster")
    register_reinforce()
    if unknown := [algo for algo in args.algos if algo not in ALGOS]:
        parser.error(f"unknown algorithm(s) {unknown}; choose from {sorted(ALGOS)}")
    for env_id in args.env:
        try:
            gym.spec(env_id)
        except gym.error.Error as error:
            parser.error(f"unknown environment {env_id!r}: {error}")
    n_timesteps = {
        env_id: args.n_timesteps or max(get_n_timesteps(algo, env_id) for algo in args.algos) for env_id in args.env
    }
    if not args.report_only:
        check_models(parser, args)
        print(describe_grid(args, n_timesteps), flush=True)
    if args.cluster is not None:
        train_on_cluster(args, n_timesteps)
    # The command that trains the grid (a report of its finished runs states it too)
    command = f"python -m sb3_reinforce.compare {shlex.join(arg for arg in argv if arg != '--report-only')}"
    # With --cluster every run is finished by now: compare only writes the reports
    for env_id in args.env:
        output = args.output / env_id
        try:
            compare(
                env_id,
                args.algos,
                args.seeds,
                output,
                n_timesteps=n_timesteps[env_id],
                eval_freq=args.eval_freq,
                eval_episodes=args.eval_episodes,
                variants=args.set,
                held_out_seeds=args.held_out_seeds,
                jobs=args.jobs,
                device=args.device,
                num_threads=args.num_threads,
                command=command,
                train=not args.report_only,
            )
        except RunInterruptedError as error:
            raise SystemExit(f"{error}. Run the same command again to continue.") from None
        except NothingToReportError as error:
            print(f"{error}: no report written", file=sys.stderr)
            continue
        print((output / "summary.md").read_text())
        if args.results is not None:
            args.results.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(output / "summary.md", args.results / f"{env_id}.md")
            shutil.copyfile(output / "learning_curves.png", args.results / f"{env_id}.png")
