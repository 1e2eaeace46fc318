"""
Steps per second of REINFORCE against SB3 on the same env, n_envs and policy, in one process.

Runs, alternating and repeated: REINFORCE ``learn()``, A2C ``learn()``, PPO ``learn()`` (each with its zoo entry,
``n_envs`` set to ``--n-envs``), SB3's own ``collect_rollouts`` with no training at all ("SB3 collect-only", A2C's
rollout loop) and REINFORCE's VecEnv (its entry's, wrappers such as ``VecNormalize`` included) stepped with random
actions and no policy at all ("random actions", what the env allows). Prints steps/s (median, min, max) and, for
each pair of rows, the median over repeats of their ratio within a repeat (``paired_ratio``). With ``--memory``,
each algorithm also runs alone in a child process for ``--memory-steps`` steps and its peak RSS is reported.

    python benchmarks/throughput.py --env CartPole-v1 --n-envs 8 --steps 50000 --repeats 5 --memory
"""

import argparse
import resource
import subprocess
import sys
import time

import numpy as np
import torch as th
from rl_zoo3.utils import ALGOS
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_reinforce.reinforce.buffers import EpisodeBuffer
from sb3_reinforce.zoo import get_hyperparameters, register_reinforce

ALGORITHMS = ("REINFORCE", "A2C", "PPO", "SB3 collect-only", "random actions")
# The zoo entry each row trains with ("random actions" steps the VecEnv that REINFORCE trains on)
ZOO_NAMES = {"REINFORCE": "reinforce", "A2C": "a2c", "PPO": "ppo", "SB3 collect-only": "a2c", "random actions": "reinforce"}


def make_model(name: str, env_id: str, n_envs: int) -> BaseAlgorithm:
    """The model of a row, from its zoo entry with ``n_envs`` envs, seed 0."""
    register_reinforce()
    algo = ZOO_NAMES[name]
    return ALGOS[algo](**get_hyperparameters(algo, env_id, seed=0, overrides={"n_envs": n_envs}))


def step_randomly(env: VecEnv, steps: int) -> None:
    """Step ``env`` with uniformly random actions until ``steps`` env steps (all envs together) are taken."""
    env.reset()
    for _ in range(-(-steps // env.num_envs)):
        env.step(np.array([env.action_space.sample() for _ in range(env.num_envs)]))


def run(name: str, env_id: str, n_envs: int, steps: int) -> float:
    """Train (or only collect, or only step the env) for ``steps`` env steps; return steps per second."""
    model = make_model(name, env_id, n_envs)
    start = time.perf_counter()
    if name == "random actions":
        # make_model gave the model its env
        step_randomly(model.get_env(), steps)  # type: ignore[arg-type]
        return -(-steps // n_envs) * n_envs / (time.perf_counter() - start)
    if name == "SB3 collect-only":
        assert isinstance(model, OnPolicyAlgorithm)  # A2C
        _, callback = model._setup_learn(steps, CallbackList([]))
        while model.num_timesteps < steps:
            model.collect_rollouts(model.get_env(), callback, model.rollout_buffer, n_rollout_steps=model.n_steps)  # type: ignore[arg-type]
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


def bytes_per_transition(model: BaseAlgorithm) -> tuple[float, float]:
    """
    :return: The bytes one transition takes in REINFORCE's episode buffer and in SB3's rollout buffer (A2C/PPO's) for
        the model's spaces
    """
    episode_buffer = EpisodeBuffer(
        model.observation_space, model.action_space, n_envs=1, gamma=0.99, max_steps=1, max_bytes=2**30
    )
    rollout_buffer = RolloutBuffer(1, model.observation_space, model.action_space, n_envs=1)
    sb3_arrays = [value for value in vars(rollout_buffer).values() if isinstance(value, np.ndarray)]
    return float(episode_buffer.row_bytes), float(sum(array.nbytes for array in sb3_arrays))


def paired_ratio(speeds: list[float], other_speeds: list[float]) -> float:
    """
    :return: The median over repeats of the ratio of two rows' speeds in the same repeat: runs next to each other in
        time, so a drift of the machine's speed between repeats cancels out (a ratio of medians would keep it)
    """
    return float(np.median(np.divide(speeds, other_speeds)))


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

    header = ["algorithm", "steps/s median", "min", "max", *(f"x {other}" for other in args.algos if other != "REINFORCE")]
    rows = [header]
    for name in args.algos:
        ratios = [f"{paired_ratio(speeds[name], speeds[other]):.2f}" for other in args.algos if other != "REINFORCE"]
        speed = speeds[name]
        rows.append([name, f"{np.median(speed):,.0f}", f"{min(speed):,.0f}", f"{max(speed):,.0f}", *ratios])
    print(f"{args.env}, {args.n_envs} envs, {args.steps:,} steps per run, {args.repeats} repeats, torch threads 1")
    print(table(rows))

    if args.memory:
        memory = [["algorithm", f"peak RSS (MB), {args.memory_steps:,} steps"]]
        memory += [[name, f"{peak_rss_mb(name, args.env, args.n_envs, args.memory_steps):,.0f}"] for name in args.algos]
        print(table(memory))
        episode_bytes, rollout_bytes = bytes_per_transition(make_model("REINFORCE", args.env, 1))
        print(
            f"bytes per transition: REINFORCE's episode buffer {episode_bytes:,.0f}, SB3's rollout buffer {rollout_bytes:,.0f}"
        )


if __name__ == "__main__":
    main()
