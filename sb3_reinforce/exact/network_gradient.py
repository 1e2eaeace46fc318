"""Exact ``J`` and policy gradient for the policy network of an SB3 model on a known tabular MDP."""

from typing import cast

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy

from sb3_reinforce.exact.mdp import TabularMDP, check_discrete_space


def differentiable_objective(mdp: TabularMDP, pi: th.Tensor) -> th.Tensor:
    """
    ``J(pi)`` as a differentiable torch scalar (float64), the autograd twin of ``mdp.evaluate(pi).J``:
    ``J = d_0^T (I - gamma P_pi)^{-1} r_pi`` for the infinite horizon, ``V <- r_pi + gamma P_pi V`` H times
    from ``V = 0`` then ``J = d_0^T V`` for a finite horizon H.

    :param mdp: The MDP.
    :param pi: The policy table ``pi[s, a] = pi(a|s)``, shape ``(S, A)``, possibly requiring grad.
    :return: ``J(pi)``, a float64 scalar tensor on the device of ``pi``.
    """
    if not isinstance(pi, th.Tensor):
        raise TypeError(f"pi must be a torch.Tensor (use mdp.evaluate for a numpy table), got {type(pi).__name__}")
    mdp.check_policy(pi.detach().cpu().numpy())
    pi = pi.to(th.float64)
    transitions, rewards, initial_distribution = (
        th.tensor(array, device=pi.device) for array in (mdp.transitions, mdp.rewards, mdp.initial_distribution)
    )
    transitions_pi = th.einsum("sa,sat->st", pi, transitions)
    rewards_pi = (pi * rewards).sum(dim=1)
    if mdp.horizon is None:
        identity = th.eye(mdp.n_states, dtype=th.float64, device=pi.device)
        values = th.linalg.solve(identity - mdp.gamma * transitions_pi, rewards_pi)
    else:
        values = th.zeros_like(rewards_pi)
        for _ in range(mdp.horizon):
            values = rewards_pi + mdp.gamma * transitions_pi @ values
    return initial_distribution @ values


def check_model(model: BaseAlgorithm, mdp: TabularMDP) -> ActorCriticPolicy:
    """
    Check that a model's policy can be evaluated exactly on this MDP.

    :param model: An SB3 model whose policy is an ``ActorCriticPolicy`` (A2C, PPO, ...).
    :param mdp: The MDP.
    :return: The policy of the model.
    """
    if not isinstance(model, BaseAlgorithm) or not isinstance(model.policy, ActorCriticPolicy):
        raise TypeError(f"model must be an SB3 algorithm with an ActorCriticPolicy (A2C, PPO, ...), got {model!r}")
    n_states = check_discrete_space(model.observation_space, "observation")
    n_actions = check_discrete_space(model.action_space, "action")
    if (n_states, n_actions) != (mdp.n_states, mdp.n_actions):
        raise ValueError(
            f"the model's spaces Discrete({n_states}) x Discrete({n_actions}) do not match "
            f"the MDP's S={mdp.n_states} states and A={mdp.n_actions} actions"
        )
    return model.policy


def policy_probabilities(model: BaseAlgorithm, mdp: TabularMDP) -> th.Tensor:
    """
    The policy table of a model's policy network: the action probabilities of every state,
    observed as the policy observes them (one-hot encoded by SB3's preprocessing).

    :param model: An SB3 model whose policy is an ``ActorCriticPolicy`` (A2C, PPO, ...).
    :param mdp: The MDP, whose states are the model's observations.
    :return: ``pi[s, a]``, shape ``(S, A)``, differentiable with respect to the policy parameters.
    """
    policy = check_model(model, mdp)
    observations, _ = policy.obs_to_tensor(np.arange(mdp.n_states))
    # check_model ensures a Discrete action space: SB3's CategoricalDistribution wraps a torch Categorical
    return cast(th.distributions.Categorical, policy.get_distribution(observations).distribution).probs


def exact_policy_gradient(model: BaseAlgorithm, mdp: TabularMDP) -> dict[str, th.Tensor]:
    """
    The exact gradient of ``J(pi_theta)`` with respect to each parameter of a model's policy network,
    by autograd through :func:`differentiable_objective`. The ``.grad`` fields of the parameters are left untouched.

    :param model: An SB3 model whose policy is an ``ActorCriticPolicy`` (A2C, PPO, ...)
        on a ``Discrete`` observation space and a ``Discrete`` action space.
    :param mdp: The MDP, whose states are the model's observations.
    :return: A dict keyed like ``model.policy.named_parameters()`` of torch tensors with the shape, dtype and
        device of each parameter; zero for the parameters ``J`` does not depend on (the value head).
    """
    objective = differentiable_objective(mdp, policy_probabilities(model, mdp))
    names, parameters = zip(*model.policy.named_parameters(), strict=True)
    gradients = th.autograd.grad(objective, parameters, allow_unused=True)
    return {
        name: th.zeros_like(parameter) if gradient is None else gradient
        for name, parameter, gradient in zip(names, parameters, gradients, strict=True)
    }
