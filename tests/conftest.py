from collections.abc import Callable
from statistics import NormalDist

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_reinforce import REINFORCE
from sb3_reinforce.exact import TabularMDP

# Deterministic, and faster on 2 cores than torch's default thread pool for these small networks
th.set_num_threads(1)


def sgd_model(mdp: TabularMDP, make_env: Callable[[], gym.Env], n_episodes: int, **kwargs) -> REINFORCE:
    """
    REINFORCE on ``mdp`` with the settings under which an update is exactly ``learning_rate * g_hat`` (plain SGD, no
    gradient clipping), as ``sampled_policy_gradients`` needs. One env per episode of a batch: the batch is collected
    in parallel.

    :param mdp: The known MDP (its ``gamma``)
    :param make_env: Makes an env that samples ``mdp``, episodes cut at its horizon
    :param n_episodes: Episodes per update
    :param kwargs: Other arguments of ``REINFORCE``
    :return: The model, a policy with one hidden layer of 8 units
    """
    return REINFORCE(
        "MlpPolicy",
        make_vec_env(make_env, n_envs=n_episodes, seed=0),
        learning_rate=0.1,
        n_episodes=n_episodes,
        gamma=mdp.gamma,
        max_grad_norm=None,
        policy_kwargs=dict(net_arch=[8], optimizer_class=th.optim.SGD),
        seed=0,
        **kwargs,
    )


def z_scores(samples: dict[str, np.ndarray], exact: dict[str, np.ndarray], tolerance: float = 1e-6) -> np.ndarray:
    """
    (sample mean - exact) / standard error for every component of the parameters named in ``exact``.
    A component whose samples are all equal (zero standard error) scores 0 if it is within ``tolerance`` of exact.

    :param samples: Samples of each parameter's estimate, shape ``(n_samples, *parameter.shape)``
    :param exact: The exact value of each parameter's estimand
    :return: One score per component
    """
    scores = []
    for name, exact_value in exact.items():
        values = samples[name]
        error = values.mean(axis=0) - np.asarray(exact_value)
        standard_error = values.std(axis=0, ddof=1) / np.sqrt(len(values))
        constant = standard_error == 0
        constant_score = np.where(np.abs(error) <= tolerance, 0.0, np.inf)
        score = np.where(constant, constant_score, error / np.where(constant, 1, standard_error))
        scores.append(score.ravel())
    return np.concatenate(scores)


def z_bound(n_components: int, n_samples: int, false_alarm: float = 1e-4) -> float:
    """
    A bound that some of the |z-scores| of ``n_components`` unbiased estimates exceed with probability below
    ``false_alarm``. Bonferroni: each component's two-sided tail gets ``false_alarm / n_components``. A z-score divides
    by the sample standard deviation: for samples about normal (each a mean over a batch of episodes) it follows
    Student's t with ``n_samples - 1`` degrees of freedom, whose quantile is the normal one plus its first two
    corrections in 1 / dof (Abramowitz and Stegun 26.7.5; within 1% of the exact quantile from 50 samples on).

    :param n_components: Number of z-scores checked together
    :param n_samples: Number of samples behind each z-score
    :param false_alarm: Probability that a correct implementation fails the check
    :return: The bound
    """
    z = NormalDist().inv_cdf(1 - false_alarm / (2 * n_components))
    dof = n_samples - 1
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)
