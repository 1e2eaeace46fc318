import copy

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_reinforce.exact import (
    TabularMDP,
    differentiable_objective,
    exact_policy_gradient,
    policy_gradient,
    policy_probabilities,
    softmax_policy,
    trajectory_policy_gradient,
)


def random_logits(mdp: TabularMDP, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((mdp.n_states, mdp.n_actions))


def finite_difference_gradient(objective, parameters: np.ndarray, epsilon: float = 1e-5) -> np.ndarray:
    """Central differences ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``, error O(eps^2)."""
    gradient = np.zeros_like(parameters)
    for index in np.ndindex(parameters.shape):
        step = np.zeros_like(parameters)
        step[index] = epsilon
        gradient[index] = (objective(parameters + step) - objective(parameters - step)) / (2 * epsilon)
    return gradient


@pytest.mark.parametrize(
    "n_states, n_actions, horizon, gamma",
    [(2, 2, 1, 0.9), (3, 2, 4, 0.9), (2, 3, 5, 1.0), (3, 3, 3, 0.0)],
)
def test_action_value_and_trajectory_gradients_agree(n_states: int, n_actions: int, horizon: int, gamma: float) -> None:
    # eq. (4) with time-indexed Q_h, d_h against eq. (2) enumerating all trajectories: equal to float precision
    mdp = TabularMDP.random(n_states, n_actions, gamma=gamma, horizon=horizon, seed=horizon)
    theta = random_logits(mdp, seed=1)
    gradient = policy_gradient(mdp, theta)
    assert np.abs(gradient).max() > 1e-3
    np.testing.assert_allclose(trajectory_policy_gradient(mdp, theta), gradient, rtol=0.0, atol=1e-13)


@pytest.mark.parametrize("horizon", [None, 7])
def test_policy_gradient_matches_finite_differences(horizon: int | None) -> None:
    mdp = TabularMDP.random(5, 3, gamma=0.95, horizon=horizon, seed=2)
    theta = random_logits(mdp, seed=3)
    numerical = finite_difference_gradient(lambda logits: mdp.evaluate(softmax_policy(logits)).J, theta)
    # Central differences with eps = 1e-5: truncation ~ eps^2 |J'''| and rounding ~ 1e-16 |J| / eps, both < 1e-9
    np.testing.assert_allclose(policy_gradient(mdp, theta), numerical, rtol=0.0, atol=1e-9)


def test_softmax_policy() -> None:
    theta = np.array([[0.0, np.log(3.0)], [1000.0, 0.0]])
    np.testing.assert_allclose(softmax_policy(theta), [[0.25, 0.75], [1.0, 0.0]])
    with pytest.raises(ValueError, match=r"shape \(S, A\)"):
        softmax_policy(np.zeros(3))


def test_gradient_validation() -> None:
    mdp = TabularMDP.random(3, 2, gamma=0.9, seed=0)
    with pytest.raises(ValueError, match=r"shape \(S, A\) = \(3, 2\)"):
        policy_gradient(mdp, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        policy_gradient(mdp, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="finite horizon"):
        trajectory_policy_gradient(mdp, np.zeros((3, 2)))


# SB3 policy networks on FrozenLake's spaces (16 states, 4 actions), with a random MDP of that size for rich rewards


def frozen_lake_model(algorithm: type[BaseAlgorithm], net_arch: list[int]) -> BaseAlgorithm:
    model = algorithm("MlpPolicy", "FrozenLake-v1", policy_kwargs=dict(net_arch=net_arch), seed=0, device="cpu")
    # SB3 initialises the action head near zero (a uniform policy): move away from it
    generator = th.Generator().manual_seed(0)
    with th.no_grad():
        for parameter in model.policy.parameters():
            parameter.add_(th.randn(parameter.shape, generator=generator))
    return model


@pytest.mark.parametrize("horizon", [None, 10])
def test_linear_policy_network_matches_tabular_gradient(horizon: int | None) -> None:
    # net_arch=[]: logits = W one_hot(s) + b, i.e. tabular logits theta[s, a] = W[a, s] + b[a], so by the chain rule
    # dJ/dW[a, s] = dJ/dtheta[s, a] and dJ/db[a] = sum_s dJ/dtheta[s, a]
    mdp = TabularMDP.random(16, 4, gamma=0.9, horizon=horizon, seed=4)
    model = frozen_lake_model(A2C, net_arch=[])
    weight = model.policy.action_net.weight.detach().double().numpy()
    bias = model.policy.action_net.bias.detach().double().numpy()
    tabular = policy_gradient(mdp, weight.T + bias)
    gradient = exact_policy_gradient(model, mdp)
    assert set(gradient) == {name for name, _ in model.policy.named_parameters()}
    # The network computes pi in float32: agreement to float32 precision relative to the gradient's scale
    tolerance = 1e-6 * np.abs(tabular).max()
    np.testing.assert_allclose(gradient["action_net.weight"].numpy(), tabular.T, rtol=0.0, atol=tolerance)
    np.testing.assert_allclose(gradient["action_net.bias"].numpy(), tabular.sum(axis=0), rtol=0.0, atol=tolerance)
    for name in ("value_net.weight", "value_net.bias"):
        assert th.equal(gradient[name], th.zeros_like(model.policy.get_parameter(name)))


def float64_policy_table(policy: th.nn.Module, n_states: int) -> th.Tensor:
    """The forward pass of ``ActorCriticPolicy.get_distribution`` on one-hot observations, in float64."""
    features = th.eye(n_states, dtype=th.float64)
    return th.softmax(policy.action_net(policy.mlp_extractor.forward_actor(features)), dim=1)


@pytest.mark.parametrize("algorithm, horizon", [(PPO, None), (A2C, 10)])
def test_policy_network_gradient_matches_finite_differences(algorithm: type[BaseAlgorithm], horizon: int | None) -> None:
    mdp = TabularMDP.random(16, 4, gamma=0.9, horizon=horizon, seed=5)
    model = frozen_lake_model(algorithm, net_arch=[8])
    # Finite differences on a float64 copy of the network (float32 would drown them in rounding),
    # copied before any forward pass: SB3 keeps the last distribution (and its graph) on the policy
    policy64 = copy.deepcopy(model.policy).double()
    gradient = exact_policy_gradient(model, mdp)
    assert all(parameter.grad is None for parameter in model.policy.parameters())
    table = float64_policy_table(policy64, mdp.n_states)
    np.testing.assert_allclose(table.detach().numpy(), policy_probabilities(model, mdp).detach().numpy(), atol=1e-6)
    for name, parameter in policy64.named_parameters():
        initial = parameter.detach().clone()

        def objective(values: np.ndarray, parameter: th.nn.Parameter = parameter) -> float:
            with th.no_grad():
                parameter.copy_(th.as_tensor(values))
                return differentiable_objective(mdp, float64_policy_table(policy64, mdp.n_states)).item()

        numerical = finite_difference_gradient(objective, initial.numpy())
        with th.no_grad():
            parameter.copy_(initial)
        np.testing.assert_allclose(gradient[name].numpy(), numerical, rtol=1e-4, atol=1e-7, err_msg=name)
    assert th.count_nonzero(gradient["mlp_extractor.policy_net.0.weight"]) > 0
    assert th.count_nonzero(gradient["mlp_extractor.value_net.0.weight"]) == 0


def test_model_validation() -> None:
    mdp = TabularMDP.random(16, 4, gamma=0.9, seed=0)
    with pytest.raises(TypeError, match="Discrete"):
        exact_policy_gradient(PPO("MlpPolicy", "CartPole-v1", device="cpu"), mdp)
    with pytest.raises(TypeError, match="ActorCriticPolicy"):
        exact_policy_gradient(DQN("MlpPolicy", "FrozenLake-v1", device="cpu"), mdp)
    with pytest.raises(TypeError, match="ActorCriticPolicy"):
        exact_policy_gradient(frozen_lake_model(PPO, []).policy, mdp)
    with pytest.raises(ValueError, match="do not match"):
        exact_policy_gradient(A2C("MlpPolicy", gym.make("FrozenLake8x8-v1"), device="cpu"), mdp)
