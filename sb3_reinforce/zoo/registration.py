"""Make REINFORCE one of rl-zoo3's algorithms."""

import rl_zoo3.exp_manager
from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
from rl_zoo3.utils import ALGOS

from sb3_reinforce import REINFORCE
from sb3_reinforce.common import SubprocVecEnv
from sb3_reinforce.zoo.sampler import convert_reinforce_params, sample_reinforce_params

ALGO_NAME = "reinforce"


def register_reinforce() -> None:
    """
    Add REINFORCE, as ``"reinforce"``, to rl-zoo3's algorithms (``ALGOS``), hyperparameter samplers
    (``HYPERPARAMS_SAMPLER``) and trial converters (``HYPERPARAMS_CONVERTER``), and make ``--vec-env subproc``
    build the project's ``SubprocVecEnv`` (SB3's, whose env exceptions are named and whose ``close()`` returns).
    Idempotent.

    Must run before rl-zoo3 builds a parser: ``train()`` and ``enjoy()`` fix the ``--algo`` choices from ``ALGOS``.
    """
    ALGOS[ALGO_NAME] = REINFORCE
    HYPERPARAMS_SAMPLER[ALGO_NAME] = sample_reinforce_params
    HYPERPARAMS_CONVERTER[ALGO_NAME] = convert_reinforce_params
    # ExperimentManager picks the class by this module attribute when it is built
    rl_zoo3.exp_manager.SubprocVecEnv = SubprocVecEnv  # type: ignore[misc]
