"""
The docs: the Sphinx site builds without a warning, every link stays in the repository or goes to a public site,
the README keeps its set-up commands and its length, and the CartPole-v1 example is the zoo entry everywhere.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKDOWN_FILES = [README, *sorted((ROOT / "docs").glob("**/*.md"))]
# The two commands of the README, verbatim; .ci/run runs the second one
MAIN_JOB = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e . && "
    "python examples/train_cartpole.py"
)
TEST_JOB = (
    'python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e ".[tests]" && '
    "python -m pytest -n 2"
)
MAX_README_LINES = 150
# [text](target) and ![alt](target), the target up to a space or the closing parenthesis
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def links(path: Path) -> list[str]:
    """:return: The targets of the markdown links of ``path``, code blocks excluded"""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    return LINK.findall(text)


@pytest.mark.slow
def test_sphinx_site_builds_without_warnings(tmp_path: Path) -> None:
    # Sphinx, MyST and the theme come with the docs extra (and so with the tests extra)
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(ROOT / "docs"), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0 and "WARNING" not in result.stderr, result.stderr[-5000:]
    api = (tmp_path / "html" / "api.html").read_text()
    # autodoc found the classes and functions (an import failure would only warn, and -W makes that fail above)
    for name in ("REINFORCE", "EpisodeBuffer", "sampled_policy_gradients", "policy_evaluation", "get_hyperparameters"):
        assert name in api


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_links_stay_in_the_repository(path: Path) -> None:
    for target in links(path):
        if target.startswith(("https://", "http://")):
            continue
        assert "shared/" not in target, f"{path}: {target} leaves the repository"
        file_part = target.split("#", 1)[0]
        if file_part:
            resolved = (path.parent / file_part).resolve()
            assert resolved.is_relative_to(ROOT), f"{path}: {target} leaves the repository"
            assert resolved.exists(), f"{path}: {target} does not exist"


def test_readme_set_up_commands_and_length() -> None:
    readme = README.read_text()
    lines = readme.splitlines()
    assert MAIN_JOB in lines
    assert TEST_JOB in lines
    # CI runs the README's test command, verbatim
    assert TEST_JOB in (ROOT / ".ci" / "run").read_text().splitlines()
    assert len(lines) <= MAX_README_LINES


def reinforce_keywords(source: str) -> dict[str, str]:
    """:return: The keyword arguments of the first ``REINFORCE(...)`` call in ``source``, as source text"""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "REINFORCE":
            return {keyword.arg: ast.unparse(keyword.value) for keyword in node.keywords if keyword.arg}
    raise AssertionError("no REINFORCE(...) call")


def python_blocks(path: Path) -> list[str]:
    """:return: The ```python blocks of a markdown file"""
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


def test_cartpole_example_is_the_zoo_entry() -> None:
    entry = yaml.safe_load((ROOT / "zoo_configs" / "reinforce.yml").read_text())["CartPole-v1"]
    example = reinforce_keywords((ROOT / "examples" / "train_cartpole.py").read_text())
    assert entry["learning_rate"] == "lin_0.005"
    assert example["learning_rate"] == "LinearSchedule(start=0.005, end=0.0, end_fraction=1.0)"
    for name in ("n_episodes", "gamma", "gamma_weighting", "baseline", "normalize_advantage"):
        assert ast.literal_eval(example[name]) == entry[name], name
    assert example["policy_kwargs"] == entry["policy_kwargs"]
    assert entry["n_envs"] == 8
    assert 'make_vec_env("CartPole-v1", n_envs=8, seed=0)' in (ROOT / "examples" / "train_cartpole.py").read_text()
    # The README's and docs/reinforce.md's examples: the same settings
    for path in (README, ROOT / "docs" / "reinforce.md"):
        block = next(block for block in python_blocks(path) if "REINFORCE(" in block and "CartPole-v1" in block)
        keywords = {name: value for name, value in reinforce_keywords(block).items() if name not in ("verbose",)}
        assert keywords == {name: value for name, value in example.items() if name != "verbose"}, path
        assert 'make_vec_env("CartPole-v1", n_envs=8, seed=0)' in block, path
