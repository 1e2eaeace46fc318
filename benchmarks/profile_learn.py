"""
Where REINFORCE's ``learn()`` spends its time: a sampling profile (pyinstrument) of one run from the zoo entry, summed
into the parts of a collection step and the update.

Each sampled stack is charged to the first function on it (from the outermost frame) that names a part: the VecEnv
step, drawing the actions (the fast path of ``sampling.py`` or SB3's ``get_distribution().get_actions()``), the
observation's conversion to a tensor, the buffer writes, callbacks and the episode log, the update (``train()``).
Time on no part's stack is ``collect_rollouts`` itself (its loop, the quotas, the action handling) and, under
"other", the set-up of ``learn()``.

    python benchmarks/profile_learn.py --env CartPole-v1 --n-envs 8 --steps 40000

Needs ``pip install pyinstrument``. To profile another version of the package, put it first on ``PYTHONPATH``, e.g. a
``git worktree`` of an older commit.
"""

import argparse
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

import sb3_reinforce
from sb3_reinforce.zoo import get_hyperparameters, register_reinforce

# Part of the run -> the functions whose time is charged to it (the first of them on a stack, from the outermost)
PARTS = {
    "VecEnv step (env, Monitor, VecEnv)": ("step",),
    "action draw (policy forward and sampling)": ("fast_actions", "_sb3_actions", "get_distribution", "get_actions"),
    "observation to tensor": ("obs_as_tensor",),
    "buffer writes": ("add",),
    "callbacks and episode log": ("on_step", "_update_info_buffer", "update_locals"),
    "update (train)": ("train",),
}
LOOP = "collect_rollouts"
LOOP_PART = "collection loop itself (quotas, actions to numpy, checks)"
OTHER_PART = "other (learn set-up, logging)"


class Frame(Protocol):
    """What is read of a pyinstrument frame."""

    @property
    def function(self) -> str: ...

    @property
    def time(self) -> float: ...

    @property
    def children(self) -> Sequence["Frame"]: ...


def time_by_part(root: Frame) -> dict[str, float]:
    """
    :param root: The root frame of a profile (pyinstrument's ``session.root_frame()``)
    :return: Seconds charged to each part, ``LOOP_PART`` and ``OTHER_PART``; they sum to the root's time
    """
    part_of = {function: part for part, functions in PARTS.items() for function in functions}
    seconds: dict[str, float] = defaultdict(float)

    def charge(frame: Frame, enclosing: str) -> None:
        # A part's functions inside collect_rollouts only: train() and add() have namesakes elsewhere
        if enclosing == LOOP_PART and frame.function in part_of:
            seconds[part_of[frame.function]] += frame.time
            return
        if frame.function == "train" and enclosing == OTHER_PART:
            seconds["update (train)"] += frame.time
            return
        inside = LOOP_PART if frame.function == LOOP or enclosing == LOOP_PART else OTHER_PART
        seconds[inside] += frame.time - sum(child.time for child in frame.children)
        for child in frame.children:
            charge(child, inside)

    charge(root, OTHER_PART)
    return dict(seconds)


def profile_learn(env_id: str, n_envs: int, steps: int) -> dict[str, float]:
    """Train REINFORCE from its zoo entry (seed 0, ``n_envs`` envs) for ``steps`` steps under pyinstrument."""
    import torch as th

    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit("profile_learn.py needs pyinstrument (no extra installs it): pip install pyinstrument") from None

    th.set_num_threads(1)
    register_reinforce()
    model = sb3_reinforce.REINFORCE(**get_hyperparameters("reinforce", env_id, seed=0, overrides={"n_envs": n_envs}))
    profiler = Profiler(interval=0.0002)
    profiler.start()
    model.learn(steps)
    root = profiler.stop().root_frame()
    assert root is not None, "pyinstrument recorded no sample"
    return time_by_part(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40_000)
    args = parser.parse_args()
    seconds = profile_learn(args.env, args.n_envs, args.steps)
    total = sum(seconds.values())
    print(f"{args.env}, {args.n_envs} envs, {args.steps:,} steps; package from {sb3_reinforce.__file__}")
    print("| part of learn() | seconds | share |\n|---|---|---|")
    for part, part_seconds in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"| {part} | {part_seconds:.2f} | {part_seconds / total:.0%} |")
    print(f"| total | {total:.2f} | 100% |")


if __name__ == "__main__":
    main()
