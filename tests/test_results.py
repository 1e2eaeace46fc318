"""
The published runs (``results/``): each env's report in ``docs/results`` is what ``compare --report-only`` renders
from them, and every run was started with the hyperparameters its zoo entry has now.
"""

import shlex
import shutil
from pathlib import Path

import pytest

from sb3_reinforce.zoo.compare import main

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
PUBLISHED_ENV_IDS = sorted(path.parent.name for path in RESULTS.glob("*/settings.json"))
COMMAND_PREFIX = ["python", "-m", "sb3_reinforce.compare"]


def report_arguments(report: Path) -> list[str]:
    """:return: The arguments of the command stated on the first line of ``report``"""
    command = shlex.split(report.read_text().splitlines()[0].strip("`"))
    assert command[:3] == COMMAND_PREFIX, f"{report} does not start with its compare command"
    return command[3:]


@pytest.mark.parametrize("env_id", PUBLISHED_ENV_IDS)
def test_report_renders_from_the_published_runs(env_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = ROOT / "docs" / "results" / f"{env_id}.md"
    arguments = report_arguments(report)
    assert arguments[arguments.index("--output") + 1] == "results", f"{report} was not rendered from results/"
    # A copy: rendering writes evaluations.csv and the summary beside the runs
    shutil.copytree(RESULTS / env_id, tmp_path / "results" / env_id, ignore=shutil.ignore_patterns("checkpoints", "*.tmp"))
    monkeypatch.chdir(tmp_path)
    main([*arguments, "--report-only"])
    assert (tmp_path / "docs" / "results" / f"{env_id}.md").read_text() == report.read_text()
