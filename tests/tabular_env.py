"""A small known MDP, its exact gradient for a linear softmax policy, and helpers to compare REINFORCE with it."""

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_reinforce import REINFORCE
from sb3_reinforce.exact import TabularMDP, TabularMDPEnv


def random_mdp(n_states: int = 3, n_actions: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transitions (with 10% termination), rewards and initial distribution of a random MDP."""
    rng = np.random.default_rng(seed)
    transitions = rng.dirichlet(np.ones(n_states), size=(n_states, n_actions)) * 0.9
    rewards = rng.uniform(-1.0, 1.0, size=(n_states, n_actions))
    initial_distribution = rng.dirichlet(np.ones(n_states))
    return transitions, rewards, initial_distribution


def exact_linear_softmax_gradient(
    model: REINFORCE, transitions: np.ndarray, rewards: np.ndarray, initial_distribution: np.ndarray, horizon: int
) -> dict[str, np.ndarray]:
    """
    Exact gradient of J = E[sum_{h<H} gamma^h r_h] for the linear softmax policy of ``net_arch=[]`` on one-hot
    observations (logits(s) = W[:, s] + b), by eq. (4): sum_h gamma^h sum_{s,a} d_h(s,a) Q_h(s,a) grad log pi(a|s),
    with grad_{W[:, s]} log pi(a|s) = grad_b log pi(a|s) = e_a - pi(.|s).
    """
    weight = model.policy.action_net.weight.detach().cpu().numpy()  # (A, S)
    bias = model.policy.action_net.bias.detach().cpu().numpy()
    logits = weight.T + bias
    pi = np.exp(logits - logits.max(axis=1, keepdims=True))
    pi /= pi.sum(axis=1, keepdims=True)
    gamma = model.gamma

    # Backward recursion for Q_h, forward recursion for the state distribution d_h(s)
    q_values = np.zeros((horizon, *rewards.shape))
    next_values = np.zeros(rewards.shape[0])
    for h in reversed(range(horizon)):
        q_values[h] = rewards + gamma * transitions @ next_values
        next_values = (pi * q_values[h]).sum(axis=1)
    state_distribution = initial_distribution.copy()
    grad_logits = np.zeros_like(logits)  # d J / d logits(s, a')
    for h in range(horizon):
        weighted_q = gamma**h * state_distribution[:, None] * pi * q_values[h]  # gamma^h d_h(s, a) Q_h(s, a)
        # sum_a weighted_q(s, a) (1[a = a'] - pi(a'|s))
        grad_logits += weighted_q - weighted_q.sum(axis=1, keepdims=True) * pi
        state_distribution = np.einsum("s,sa,sat->t", state_distribution, pi, transitions)
    return {"action_net.weight": grad_logits.T, "action_net.bias": grad_logits.sum(axis=0)}


def make_sgd_model(seed: int, horizon: int, n_envs: int = 1, learning_rate: float = 0.1, **kwargs) -> REINFORCE:
    """REINFORCE with a linear softmax policy and plain SGD on the random MDP, episodes cut at ``horizon`` steps."""
    transitions, rewards, initial_distribution = random_mdp(seed=seed)
    mdp = TabularMDP(transitions, rewards, kwargs.get("gamma", 0.99), initial_distribution)
    env = make_vec_env(
        lambda: gym.wrappers.TimeLimit(TabularMDPEnv(mdp), horizon),
        n_envs=n_envs,
        seed=seed,
    )
    model = REINFORCE(
        "MlpPolicy",
        env,
        learning_rate=learning_rate,
        max_grad_norm=None,
        policy_kwargs=dict(net_arch=[], optimizer_class=th.optim.SGD),
        seed=seed,
        **kwargs,
    )
    return model


def z_scores(samples: dict[str, np.ndarray], exact: dict[str, np.ndarray], tolerance: float = 1e-6) -> np.ndarray:
    """
    (sample mean - exact) / standard error for every component of the parameters named in ``exact``.
    A component whose samples are all equal (zero standard error) scores 0 if it is within ``tolerance`` of exact.
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
