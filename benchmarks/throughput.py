"""
Steps per second of REINFORCE against SB3 on the same env, n_envs and policy, in one process.

Runs, alternating and repeated: REINFORCE ``learn()``, A2C ``learn()``, PPO ``learn()`` (rl-zoo3's CartPole
settings) and SB3's own ``collect_rollouts`` with no training at all ("SB3 collect-only", A2C's rollout loop).
Prints steps/s (median, min, max) and the ratios of the medians. With ``--memory``, each algorithm also runs
alone in a child process for ``--memory-steps`` steps and its peak RSS is reported.

    python benchmarks/throughput.py --env CartPole-v1 --n-envs 8 --steps 50000 --repeats 3 --memory
"""

import argparse
import resource
import subprocess
import sys
import time

import numpy as np
import torch as th
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.env_util import make_vec_env

from sb3_reinforce import REINFORCE

ALGORITHMS = ("REINFORCE", "A2C", "PPO", "SB3 collect-only")


def make_model(name: str, env_id: str, n_envs: int):
    env = make_vec_env(env_id, n_envs=n_envs, seed=0)
    if name == "REINFORCE":
        return REINFORCE("MlpPolicy", env, n_episodes=n_envs, seed=0)
    if name == "PPO":
        # rl-zoo3's tuned CartPole-v1 entry
        return PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0, seed=0)
    return A2C("MlpPolicy", env, seed=0)


def run(name: str, env_id: str, n_envs: int, steps: int) -> float:
    """Train (or only collect) for ``steps`` env steps; return steps per second."""
    model = make_model(name, env_id, n_envs)
    start = time.perf_counter()
    if name == "SB3 collect-only":
        _, callback = model._setup_learn(steps, CallbackList([]))
        while model.num_timesteps < steps:
            model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
    else:
        model.learn(steps)
    return model.num_timesteps / (time.perf_counter() - start)


def peak_rss_mb(name: str, env_id: str, n_envs: int, steps: int) -> float:
    """Peak resident memory of a fresh process that runs ``name`` for ``steps`` steps."""
    output = subprocess.run(
        [sys.executable, __file__, "--child", name, "--env", env_id, "--n-envs", str(n_envs), "--steps", str(steps)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(output.strip().splitlines()[-1])


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50_000, help="env steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--algos", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--memory", action="store_true", help="also measure peak RSS, one child process per algorithm")
    parser.add_argument("--memory-steps", type=int, default=1_000_000)
    parser.add_argument("--child", choices=ALGORITHMS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    th.set_num_threads(1)

    if args.child:
        run(args.child, args.env, args.n_envs, args.steps)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return

    speeds: dict[str, list[float]] = {name: [] for name in args.algos}
    for _ in range(args.repeats):
        for name in args.algos:  # alternate, so that machine noise hits every algorithm alike
            speeds[name].append(run(name, args.env, args.n_envs, args.steps))

    medians = {name: float(np.median(values)) for name, values in speeds.items()}
    header = ["algorithm", "steps/s median", "min", "max", *(f"x {other}" for other in args.algos if other != "REINFORCE")]
    rows = [header]
    for name in args.algos:
        ratios = [f"{medians[name] / medians[other]:.2f}" for other in args.algos if other != "REINFORCE"]
        rows.append([name, f"{medians[name]:,.0f}", f"{min(speeds[name]):,.0f}", f"{max(speeds[name]):,.0f}", *ratios])
    print(f"{args.env}, {args.n_envs} envs, {args.steps:,} steps per run, {args.repeats} repeats, torch threads 1")
    print(table(rows))

    if args.memory:
        memory = [["algorithm", f"peak RSS (MB), {args.memory_steps:,} steps"]]
        memory += [[name, f"{peak_rss_mb(name, args.env, args.n_envs, args.memory_steps):,.0f}"] for name in args.algos]
        print(table(memory))


if __name__ == "__main__":
    main()
