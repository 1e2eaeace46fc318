"""
The gradient-check example, run as it is (no options), shows every gamma-weighted estimator matching the exact gradient
and tells the biased ``gamma_weighting=False`` variants apart: its table is not noise.
"""

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).parents[1] / "examples" / "gradient_check.py"


def table_rows(output: Path) -> dict[tuple[str, str, str], list[str]]:
    """The rows of the written table, keyed by (estimator, gamma_weighting, baseline)."""
    lines = (output / "gradient_table.md").read_text().splitlines()
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines if line.startswith("| ")][1:]
    return {(row[0], row[1], row[2]): row for row in rows}


def test_default_run_shows_the_match(tmp_path: Path) -> None:
    main = runpy.run_path(str(EXAMPLE))["main"]
    main(["--output", str(tmp_path)])
    rows = table_rows(tmp_path)
    assert len(rows) == 6
    for (_, gamma_weighting, _), row in rows.items():
        # "within the bound: matches exact"
        assert row[6] == ("yes" if gamma_weighting == "True" else "no"), row
    assert (tmp_path / "ppo_clip_objective.png").read_bytes()[:4] == b"\x89PNG"
