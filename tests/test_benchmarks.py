"""benchmarks/profile_learn.py charges each sampled stack of ``learn()`` to the part of the run it belongs to."""

import runpy
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PROFILE_LEARN = Path(__file__).parents[1] / "benchmarks" / "profile_learn.py"


@dataclass
class FakeFrame:
    """A pyinstrument frame: a function, its total time (children included) and its callees."""

    function: str
    time: float
    children: list["FakeFrame"] = field(default_factory=list)


def test_time_by_part_charges_the_outermost_part_inside_the_collection() -> None:
    profile_learn = runpy.run_path(str(PROFILE_LEARN))
    step = FakeFrame("step", 5.0, [FakeFrame("step", 4.0), FakeFrame("add", 0.5)])  # a wrapper's step and add
    collection = FakeFrame(
        "collect_rollouts",
        8.0,
        [step, FakeFrame("fast_actions", 1.0), FakeFrame("add", 0.5), FakeFrame("helper", 1.0, [FakeFrame("on_step", 0.25)])],
    )
    update = FakeFrame("train", 1.5, [FakeFrame("add", 0.5)])  # an add() of the update is the update's
    setup = FakeFrame("_setup_learn", 0.5, [FakeFrame("step", 0.2)])  # a step outside the collection is set-up
    root = FakeFrame("learn", 10.0, [collection, update, setup])

    seconds = profile_learn["time_by_part"](root)

    assert seconds == {
        "VecEnv step (env, Monitor, VecEnv)": 5.0,
        "action draw (policy forward and sampling)": 1.0,
        "buffer writes": 0.5,
        "callbacks and episode log": 0.25,
        "update (train)": 1.5,
        profile_learn["LOOP_PART"]: 8.0 - 5.0 - 1.0 - 0.5 - 0.25,
        profile_learn["OTHER_PART"]: 10.0 - 8.0 - 1.5,
    }
    assert sum(seconds.values()) == pytest.approx(root.time)
