"""
Soak test: does REINFORCE's memory stay flat over a long run? Trains the CartPole-v1 zoo entry with ``--n-envs`` envs
for ``--steps`` steps and prints the resident set size (RSS, from ``/proc/self/statm``) at every ``--every`` steps,
then the end's RSS relative to the RSS at ``--reference`` steps (after warm-up: buffers grown, allocator settled).

    python benchmarks/soak.py --steps 5000000 --n-envs 8 --reference 500000
"""

import argparse
import os
import time

import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from sb3_reinforce import REINFORCE
from sb3_reinforce.zoo import get_hyperparameters, register_reinforce


def rss_mb() -> float:
    """Resident set size of this process in MiB."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class RecordMemory(BaseCallback):
    """
    Record the RSS at the end of the first batch past every multiple of ``every`` steps.

    :param every: Steps between records
    """

    def __init__(self, every: int):
        super().__init__()
        self.every = every
        self.records: list[tuple[int, float]] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps >= self.every * (len(self.records) + 1):
            self.records.append((self.num_timesteps, rss_mb()))
            print(f"{self.num_timesteps:>10,} steps  RSS {self.records[-1][1]:8.1f} MiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5_000_000)
    parser.add_argument("--reference", type=int, default=500_000, help="steps at which the reference RSS is taken")
    parser.add_argument("--every", type=int, default=250_000)
    args = parser.parse_args()
    if args.reference % args.every:
        parser.error("--reference must be a multiple of --every")

    th.set_num_threads(1)
    register_reinforce()
    model = REINFORCE(**get_hyperparameters("reinforce", args.env, seed=0, overrides={"n_envs": args.n_envs}))
    recorder = RecordMemory(args.every)
    start = time.perf_counter()
    model.learn(args.steps, callback=recorder)
    minutes = (time.perf_counter() - start) / 60
    reference = next(rss for steps, rss in recorder.records if steps >= args.reference)
    end_steps, end = model.num_timesteps, rss_mb()
    print(
        f"{args.env}, {args.n_envs} envs, {end_steps:,} steps in {minutes:.1f} min: RSS {end:.1f} MiB at the end, "
        f"{reference:.1f} MiB at {args.reference:,} steps: {100 * (end / reference - 1):+.2f}% "
        f"(peak of the records {max(rss for _, rss in recorder.records):.1f} MiB)"
    )


if __name__ == "__main__":
    main()
