"""
Published REINFORCE / VPG results of other libraries on the MuJoCo tasks, quoted beside a comparison's own rows,
each with its source, budget, metric and env version (they ran older MuJoCo envs: numbers are indicative, not a
like-for-like comparison).

Sources:

- Tianshou's REINFORCE, ``examples/mujoco/README.md`` of thu-ml/tianshou: the maximum over training of the mean test
  return (10 test episodes per evaluation), averaged over 10 seeds; gym 0.17.3 with mujoco 2.0 (``-v3`` locomotion envs,
  ``-v2`` Reacher and pendulums); two tables, at 3e6 and at 1e7 env steps.
- Spinning Up's VPG (with a GAE critic), its PyTorch benchmark (``spinningup.openai.com``, Benchmarks page), as
  Tianshou's README quotes it: values read from the graphs at 3e6 steps (approximate); the metric is the average
  return of the training episodes of each epoch's batch (4000 steps), mean of 3 seeds, ``-v2`` envs.
"""

from dataclasses import dataclass

TIANSHOU = "Tianshou REINFORCE (thu-ml/tianshou examples/mujoco/README.md)"
TIANSHOU_METRIC = "max over training of the mean test return, mean of 10 seeds"
SPINNING_UP = "Spinning Up VPG with a GAE critic (its Benchmarks page, as quoted by Tianshou)"
SPINNING_UP_METRIC = "average training-batch return at 3e6 read from the graphs (~), mean of 3 seeds"


@dataclass(frozen=True)
class PublishedResult:
    """
    One published number.

    :param source: Library and document
    :param env_version: The env id the source ran
    :param budget: Env steps of its runs
    :param metric: What the number is
    :param value: The number
    """

    source: str
    env_version: str
    budget: int
    metric: str
    value: float


def _tianshou(env_version: str, at_3e6: float, at_1e7: float) -> list[PublishedResult]:
    return [
        PublishedResult(TIANSHOU, env_version, 3_000_000, TIANSHOU_METRIC, at_3e6),
        PublishedResult(TIANSHOU, env_version, 10_000_000, TIANSHOU_METRIC, at_1e7),
    ]


def _spinning_up(env_version: str, value: float) -> list[PublishedResult]:
    return [PublishedResult(SPINNING_UP, env_version, 3_000_000, SPINNING_UP_METRIC, value)]


# This project's env id -> the published results for that task
PUBLISHED: dict[str, list[PublishedResult]] = {
    "InvertedPendulum-v5": _tianshou("InvertedPendulum-v2", 999.2, 1000.0),
    "InvertedDoublePendulum-v5": _tianshou("InvertedDoublePendulum-v2", 1059.7, 7726.2),
    "Hopper-v5": _tianshou("Hopper-v3", 395.8, 416.0) + _spinning_up("Hopper-v2", 800.0),
    "HalfCheetah-v5": _tianshou("HalfCheetah-v3", 884.0, 1138.8) + _spinning_up("HalfCheetah-v2", 600.0),
    "Walker2d-v5": _tianshou("Walker2d-v3", 412.0, 440.9) + _spinning_up("Walker2d-v2", 460.0),
    "Swimmer-v5": _tianshou("Swimmer-v3", 35.3, 35.6) + _spinning_up("Swimmer-v2", 51.0),
    "Reacher-v5": _tianshou("Reacher-v2", -10.5, -5.5),
}


def published_markdown(env_id: str) -> str:
    """
    :param env_id: The env of a comparison
    :return: A markdown table of the published results for ``env_id`` (empty if there are none)
    """
    results = PUBLISHED.get(env_id, [])
    if not results:
        return ""
    lines = [
        "Published results for this task (other libraries, their own budgets and env versions; not run here):",
        "",
        "| Source | Env | Budget (steps) | Metric | Value |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {result.source} | {result.env_version} | {result.budget:,} | {result.metric} | {result.value:g} |"
        for result in results
    ]
    return "\n".join(lines) + "\n"
