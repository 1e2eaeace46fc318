"""Published results of other libraries appear in a comparison's report, in a table of their own, for their tasks only."""

from sb3_reinforce.zoo.published import PUBLISHED
from sb3_reinforce.zoo.report import summary_markdown
from sb3_reinforce.zoo.results import Settings
from tests.test_compare import evaluations_of, table_rows
from tests.test_mujoco import MUJOCO_ENV_IDS


def published_rows(summary: str) -> list[list[str]]:
    """The rows of the published-results table of a summary."""
    table = summary.split("Published results for this task")[1]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("| ")][1:]


def test_mujoco_report_quotes_published_numbers_apart() -> None:
    evaluations = evaluations_of([("reinforce", 0, 0, 10.0), ("reinforce", 0, 100, 900.0)])
    summary = summary_markdown(evaluations, Settings("Hopper-v5", 100, 100, 10), reward_threshold=3800.0)
    # The project's own row is untouched by the quotes
    assert table_rows(summary)[0][:3] == ["reinforce", "0", "900.0"]
    rows = published_rows(summary)
    assert [(row[1], row[2], row[4]) for row in rows] == [
        ("Hopper-v3", "3,000,000", "395.8"),
        ("Hopper-v3", "10,000,000", "416"),
        ("Hopper-v2", "3,000,000", "800"),
    ]
    assert rows[0][0].startswith("Tianshou REINFORCE") and rows[2][0].startswith("Spinning Up VPG")


def test_other_tasks_have_no_published_table() -> None:
    evaluations = evaluations_of([("reinforce", 0, 0, 10.0), ("reinforce", 0, 100, 500.0)])
    assert "Published results" not in summary_markdown(evaluations, Settings("CartPole-v1", 100, 100, 10), 475.0)


def test_every_mujoco_task_is_quoted() -> None:
    assert set(PUBLISHED) == set(MUJOCO_ENV_IDS)
