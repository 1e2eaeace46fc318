"""Optuna search space of REINFORCE for ``rl_zoo3 train -optimize`` (rl-zoo3's sampler / converter protocol)."""

from typing import Any

import optuna
from torch import nn

NET_ARCHS = {
    "tiny": dict(pi=[64], vf=[64]),
    "small": dict(pi=[64, 64], vf=[64, 64]),
    "medium": dict(pi=[256, 256], vf=[256, 256]),
}
ACTIVATION_FNS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def sample_reinforce_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sample REINFORCE hyperparameters. The estimator stays ``"reward_to_go"`` (eq. 6, never of higher variance
    than eq. 3); the baseline is one of the two that need no extra assumption ("mean" or "value").
    Gradient clipping is optional (``clip_gradients``): the value loss shares the clipped norm and can shrink
    the policy step. So is the limit on the KL divergence of each step (``limit_kl``, then ``target_kl``).
    ``bootstrap_truncated`` and ``n_critic_updates`` are sampled with the value baseline only
    (they need V).

    :param trial: The Optuna trial
    :param n_actions: Size of a Box action space (unused: no action noise)
    :param n_envs: Number of training envs (unused: ``n_episodes`` is split across them)
    :param additional_args: rl-zoo3's extra arguments (unused, HER only)
    :return: Constructor keyword arguments of REINFORCE
    """
    trial.suggest_categorical("n_episodes", [4, 8, 16, 32, 64])
    trial.suggest_float("one_minus_gamma", 0.0001, 0.05, log=True)
    trial.suggest_float("learning_rate", 1e-4, 3e-2, log=True)
    trial.suggest_categorical("baseline", ["mean", "value"])
    trial.suggest_categorical("gamma_weighting", [True, False])
    trial.suggest_categorical("normalize_advantage", [True, False])
    trial.suggest_float("ent_coef", 1e-8, 0.05, log=True)
    if trial.suggest_categorical("clip_gradients", [True, False]):
        trial.suggest_float("max_grad_norm", 0.3, 5.0, log=True)
    if trial.suggest_categorical("limit_kl", [True, False]):
        trial.suggest_float("target_kl", 0.005, 0.1, log=True)
    if trial.params["baseline"] == "value":
        trial.suggest_categorical("bootstrap_truncated", [True, False])
        trial.suggest_categorical("n_critic_updates", [0, 5, 10])
    trial.suggest_categorical("net_arch", list(NET_ARCHS))
    trial.suggest_categorical("activation_fn", list(ACTIVATION_FNS))
    trial.set_user_attr("gamma", 1 - trial.params["one_minus_gamma"])
    return convert_reinforce_params(trial.params)


def convert_reinforce_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn the parameters of a trial into REINFORCE's constructor keyword arguments
    (rl-zoo3 calls it to load a trial with ``--storage --study-name --trial-id``).

    :param sampled_params: ``trial.params`` of a trial sampled by ``sample_reinforce_params``
    :return: Constructor keyword arguments of REINFORCE
    """
    hyperparams = dict(sampled_params)
    hyperparams["gamma"] = 1 - hyperparams.pop("one_minus_gamma")
    if not hyperparams.pop("clip_gradients"):
        hyperparams["max_grad_norm"] = None
    if not hyperparams.pop("limit_kl"):
        hyperparams["target_kl"] = None
    hyperparams["policy_kwargs"] = dict(
        net_arch=NET_ARCHS[hyperparams.pop("net_arch")],
        activation_fn=ACTIVATION_FNS[hyperparams.pop("activation_fn")],
    )
    return hyperparams
