"""The MuJoCo entries of the zoo configs (gymnasium[mujoco], -v5 envs): short runs through both command lines."""

import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sb3_reinforce import REINFORCE
from sb3_reinforce.zoo import default_config_file

MUJOCO_ENV_IDS = [
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
    "Hopper-v5",
    "HalfCheetah-v5",
    "Walker2d-v5",
    "Swimmer-v5",
    "Reacher-v5",
]
ALGOS = ["reinforce", "ppo", "trpo"]
N_STEPS = 2000


def run(command: str, cwd: Path) -> None:
    """Run ``python <command>`` in a subprocess and check it succeeds."""
    result = subprocess.run([sys.executable, *shlex.split(command)], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("algo", ALGOS)
def test_packaged_mujoco_entries(algo: str) -> None:
    # No skip when MuJoCo is missing: the zoo extra installs it, and a missing install step must fail
    assert importlib.util.find_spec("mujoco") is not None
    for env_id in MUJOCO_ENV_IDS:
        config_file = default_config_file(algo, env_id)
        assert config_file is not None
        entry = yaml.safe_load(Path(config_file).read_text())[env_id]
        # Observations and rewards of very different scales: every entry normalises them
        assert entry["normalize"] is True
        # A plain 1e-3 in YAML reads as a string: floats must be written with !!float
        assert isinstance(entry["n_timesteps"], float)
        learning_rate = entry.get("learning_rate", 0.0)
        assert isinstance(learning_rate, float) or learning_rate.startswith("lin_")


@pytest.mark.slow
def test_zoo_train_hopper(tmp_path: Path) -> None:
    run(
        f"-m sb3_reinforce.zoo train --algo reinforce --env Hopper-v5 -n {N_STEPS} -f {tmp_path} --seed 0 --verbose 0",
        tmp_path,
    )
    run_folder = tmp_path / "reinforce" / "Hopper-v5_1"
    model = REINFORCE.load(run_folder / "Hopper-v5.zip")
    assert model.observation_space.shape == (11,)
    assert model.action_space.shape == (3,)
    action, _ = model.predict(model.observation_space.sample(), deterministic=True)
    assert model.action_space.contains(action)
    # The VecNormalize statistics are saved next to the model
    assert (run_folder / "Hopper-v5" / "vecnormalize.pkl").is_file()


@pytest.mark.slow
def test_compare_hopper(tmp_path: Path) -> None:
    output = tmp_path / "compare"
    run(
        f"-m sb3_reinforce.compare --env Hopper-v5 --algos {' '.join(ALGOS)} --seeds 0 -n {N_STEPS} "
        f"--eval-freq {N_STEPS} --eval-episodes 2 --output {output}",
        tmp_path,
    )
    # One sub-folder per env
    evaluations = pd.read_csv(output / "Hopper-v5" / "evaluations.csv")
    assert set(evaluations["algo"]) == set(ALGOS)
    assert set(evaluations["seed"]) == {0}
    # Evaluated before training and after the budget
    for _, evaluation_run in evaluations.groupby("algo"):
        assert evaluation_run["timesteps"].iloc[0] == 0
        assert evaluation_run["timesteps"].iloc[-1] >= N_STEPS
    summary = (output / "Hopper-v5" / "summary.md").read_text()
    table_rows = [line for line in summary.splitlines() if line.startswith("| ") and line.split("|")[1].strip() in ALGOS]
    assert [row.split("|")[1].strip() for row in table_rows] == ALGOS
