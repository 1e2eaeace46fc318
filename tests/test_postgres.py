"""
Hyperparameter search on a PostgreSQL database: two ``train -optimize`` worker processes on one study, through
rl-zoo3's ``--storage postgresql://...``. The server is named by ``SB3_REINFORCE_POSTGRES_URL`` (``.ci/postgres.sh``
starts one and sets it). Without a reachable server the test is skipped with the reason, except in CI (``CI`` set),
where it fails.
"""

import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from tests.test_zoo import OPTIMIZE

URL_VARIABLE = "SB3_REINFORCE_POSTGRES_URL"


def postgres_url() -> str:
    """:return: The URL of the test server; skips the test (fails it in CI) if there is no reachable server"""
    url = os.environ.get(URL_VARIABLE)
    if url is None:
        problem = f"{URL_VARIABLE} is not set: no PostgreSQL server to test with (.ci/postgres.sh starts one)"
    else:
        try:
            with sqlalchemy.create_engine(url).connect():
                return url
        except sqlalchemy.exc.SQLAlchemyError as error:
            problem = f"no PostgreSQL server at {URL_VARIABLE}: {type(error).__name__}: {error}"
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.mark.slow
def test_two_optimize_workers_share_a_postgres_study(tmp_path: Path) -> None:
    url = postgres_url()
    study_name = f"test-{uuid.uuid4().hex}"
    # Created first, as the docs say: two workers creating optuna's tables at once can collide
    optuna.create_study(study_name=study_name, storage=url, direction="maximize")
    workers: list[subprocess.Popen] = []
    try:
        for seed in (1, 2):
            command = f"-m sb3_reinforce.zoo train {OPTIMIZE} --storage {url} --study-name {study_name}"
            # Different seeds: two workers with the same seed would sample the same random first trials
            command += f" --seed {seed} -f {tmp_path / f'worker{seed}'}"
            arguments = [sys.executable, *shlex.split(command)]
            workers.append(subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        for worker in workers:
            _, stderr = worker.communicate(timeout=300)
            assert worker.returncode == 0, stderr
        # Each worker runs exactly its --n-trials 2: four trials in the study are both workers' trials
        trials = optuna.load_study(study_name=study_name, storage=url).trials
        assert len(trials) == 4
        assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in trials)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        optuna.delete_study(study_name=study_name, storage=url)
