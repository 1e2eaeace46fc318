"""
The published runs (``results/``): each report in ``docs/results`` whose command writes to ``--output results`` is what
``compare --report-only`` renders from them, and every run was started with the hyperparameters its zoo entry has now.
"""

import shlex
import shutil
from pathlib import Path

import pytest

from sb3_reinforce.zoo.compare import main, make_parser

ROOT = Path(__file__).resolve().parents[1]
COMMAND_PREFIX = ["python", "-m", "sb3_reinforce.compare"]


def report_arguments(report: Path) -> list[str]:
    """:return: The arguments of the compare command on the first line of ``report``, none if it has no such line"""
    command = shlex.split(report.read_text().splitlines()[0].strip("`"))
    return command[3:] if command[:3] == COMMAND_PREFIX else []


def rendered_from_results(report: Path) -> bool:
    """:return: Whether ``report`` was rendered from the repository's ``results/`` folder"""
    arguments = report_arguments(report)
    return bool(arguments) and make_parser().parse_args(arguments).output == Path("results")


PUBLISHED_REPORTS = [report for report in sorted((ROOT / "docs" / "results").glob("*.md")) if rendered_from_results(report)]


@pytest.mark.parametrize("report", PUBLISHED_REPORTS, ids=lambda report: report.stem)
def test_report_renders_from_the_published_runs(report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A copy: rendering writes evaluations.csv and the summary beside the runs
    shutil.copytree(
        ROOT / "results" / report.stem, tmp_path / "results" / report.stem, ignore=shutil.ignore_patterns("checkpoints")
    )
    monkeypatch.chdir(tmp_path)
    main([*report_arguments(report), "--report-only"])
    assert (tmp_path / "docs" / "results" / report.name).read_text() == report.read_text()
