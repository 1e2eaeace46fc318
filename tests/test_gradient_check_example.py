"""The example script runs end to end: the table of estimators against the exact gradient, and Figure 1."""

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).parents[1] / "examples" / "gradient_check.py"


def test_gradient_check_example(tmp_path, capsys):
    main = runpy.run_path(str(EXAMPLE))["main"]
    main(["--env", "random", "--horizon", "3", "--gamma", "0.8", "--episodes", "20", "--output", str(tmp_path)])
    table = (tmp_path / "gradient_table.md").read_text().splitlines()
    assert len([line for line in table if line.startswith("| reward_to_go") or line.startswith("| episode_return")]) == 6
    assert (tmp_path / "ppo_clip_objective.png").read_bytes()[:4] == b"\x89PNG"
    assert "exact ||grad J||" in capsys.readouterr().out
