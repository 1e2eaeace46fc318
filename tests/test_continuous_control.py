"""
What continuous control needs, each option tested: the tanh-squashed Gaussian of ``SquashedMlpPolicy`` (its policy
gradient and its entropy estimate against closed forms by quadrature, with the biased variants failing the same check;
bounded actions; save/load), and the options REINFORCE takes from SB3: ``normalize:`` entries (VecNormalize),
orthogonal initialisation, the state-independent learned log-std, ``lin_`` learning-rate schedules and gSDE.
"""

import math
from functools import cache
from itertools import pairwise
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from rl_zoo3.utils import create_test_env, get_saved_hyperparams
from stable_baselines3.common.distributions import DiagGaussianDistribution, SquashedDiagGaussianDistribution
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecNormalize

from sb3_reinforce import REINFORCE
from sb3_reinforce.reinforce import SquashedActorCriticPolicy, sampled_policy_gradients
from sb3_reinforce.reinforce.policies import squashed_gaussian_entropy
from sb3_reinforce.reinforce.sampling import fast_sampling
from sb3_reinforce.zoo import get_hyperparameters
from sb3_reinforce.zoo.__main__ import main as zoo_main
from tests.conftest import z_bound, z_scores

# Asymmetric bounds whose rescaling of tanh's 1 rounds past the upper bound in float32 (without the clip)
BOUNDS = spaces.Box(np.array([-0.3, -1.1], dtype=np.float32), np.array([0.9, 2.7], dtype=np.float32))
# The bandit's observations, drawn uniformly, and the action its reward peaks at (near a bound: tanh matters)
OBSERVATIONS = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5]], dtype=np.float32)
TARGET = np.array([0.8, -0.6], dtype=np.float32)
# Episodes (one step each, one env each) per update, and updates per check: as tests/test_unbiased.py
N_EPISODES = 16
N_UPDATES = 100
# Gauss-Hermite nodes per action dimension
N_NODES = 80


class ContinuousBandit(gym.Env):
    """
    One step: an observation drawn from ``OBSERVATIONS``, an action in ``BOUNDS`` (any other is refused), the reward
    ``-|action - TARGET|^2``. Every action received is kept in ``actions``.
    """

    observation_space = spaces.Box(-1, 1, shape=(2,), dtype=np.float32)
    action_space = BOUNDS

    def __init__(self):
        super().__init__()
        self.actions: list[np.ndarray] = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return OBSERVATIONS[self.np_random.integers(len(OBSERVATIONS))], {}

    def step(self, action):
        assert self.action_space.contains(action), f"{action!r} is not in {self.action_space}"
        self.actions.append(np.array(action))
        return OBSERVATIONS[0], -float(np.sum((action - TARGET) ** 2)), True, False, {}


def reward(actions: th.Tensor) -> th.Tensor:
    """The bandit's reward of env actions (last dimension), in torch."""
    return -((actions - th.as_tensor(TARGET, dtype=actions.dtype, device=actions.device)) ** 2).sum(dim=-1)


def gauss_hermite(n_nodes: int, dim: int) -> tuple[th.Tensor, th.Tensor]:
    """
    :return: Nodes ``(n_nodes**dim, dim)`` and weights of the product rule for ``E[f(eps)]``, ``eps`` standard normal
        in ``dim`` dimensions (float64)
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)
    grid = np.stack(np.meshgrid(*[nodes] * dim, indexing="ij"), axis=-1).reshape(-1, dim)
    grid_weights = np.prod(np.stack(np.meshgrid(*[weights / math.sqrt(2 * math.pi)] * dim, indexing="ij")), axis=0)
    return th.as_tensor(grid), th.as_tensor(grid_weights.ravel())


def squashed_expectation(policy: ActorCriticPolicy, function, n_nodes: int = N_NODES) -> th.Tensor:
    """
    ``E[function(u)]`` for ``u`` the pre-tanh Gaussian of the policy, averaged over ``OBSERVATIONS``, by Gauss-Hermite
    quadrature on the policy's device, differentiable with respect to the policy's parameters.

    :param function: Of the pre-tanh actions ``(n_observations, n_nodes, action_dim)``, one value per node
    """
    gaussian = policy.get_distribution(th.as_tensor(OBSERVATIONS, device=policy.device)).distribution
    nodes, weights = (tensor.to(policy.device) for tensor in gauss_hermite(n_nodes, gaussian.mean.shape[-1]))
    pre_tanh = gaussian.mean.double()[:, None, :] + gaussian.stddev.double()[:, None, :] * nodes[None]
    return (function(pre_tanh) * weights).sum(dim=-1).mean()


def expected_reward(policy: ActorCriticPolicy, n_nodes: int = N_NODES) -> th.Tensor:
    """J: the expected reward of the squashed policy on the bandit, by quadrature."""
    low, high = (th.as_tensor(bound, dtype=th.float64, device=policy.device) for bound in (BOUNDS.low, BOUNDS.high))
    return squashed_expectation(policy, lambda u: reward(low + 0.5 * (th.tanh(u) + 1) * (high - low)), n_nodes)


def squashed_entropy(policy: ActorCriticPolicy, n_nodes: int = N_NODES) -> th.Tensor:
    """The entropy of the squashed policy, averaged over ``OBSERVATIONS``: H(u) + E[sum log(1 - tanh(u)^2)]."""
    gaussian = policy.get_distribution(th.as_tensor(OBSERVATIONS, device=policy.device)).distribution
    # log(1 - tanh(u)^2) = -2 log(cosh(u)), written so that it stays finite where tanh(u) rounds to 1
    log_det_jacobian = squashed_expectation(
        policy, lambda u: (-2 * (u.abs() + th.log1p(th.exp(-2 * u.abs())) - math.log(2))).sum(dim=-1), n_nodes
    )
    return gaussian.entropy().sum(dim=-1).mean() + log_det_jacobian


def policy_gradient(policy: ActorCriticPolicy, objective: th.Tensor) -> dict[str, np.ndarray]:
    """The gradient of ``objective`` with respect to the policy's parameters (the value function's excluded)."""
    named = [(name, parameter) for name, parameter in policy.named_parameters() if "value" not in name]
    gradients = th.autograd.grad(objective, [parameter for _, parameter in named], allow_unused=True)
    return {
        name: np.zeros(parameter.shape) if gradient is None else gradient.double().cpu().numpy()
        for (name, parameter), gradient in zip(named, gradients, strict=True)
    }


class GaussianAtTheSquashedAction(SquashedDiagGaussianDistribution):
    """The bias to show: the Gaussian log-density at the squashed action ``a``, as if it were the pre-tanh ``u``."""

    def log_prob(self, actions: th.Tensor, gaussian_actions: th.Tensor | None = None) -> th.Tensor:
        return DiagGaussianDistribution.log_prob(self, actions)


def bandit_model(**kwargs) -> REINFORCE:
    """
    REINFORCE with ``SquashedMlpPolicy`` on the bandit, with the settings under which an update is exactly
    ``learning_rate * g_hat`` (plain SGD, no clipping), and a policy whose mean depends on the observation.
    """
    model = REINFORCE(
        "SquashedMlpPolicy",
        make_vec_env(ContinuousBandit, n_envs=N_EPISODES, seed=0),
        learning_rate=0.1,
        n_episodes=N_EPISODES,
        max_grad_norm=None,
        policy_kwargs=dict(net_arch=[8], optimizer_class=th.optim.SGD),
        seed=0,
        **kwargs,
    )
    with th.no_grad():
        # SB3 initialises the action head orthogonally with gain 0.01: gain 1 instead, means away from 0
        model.policy.action_net.weight.mul_(100.0)
        model.policy.action_net.bias.copy_(th.tensor([0.5, -0.4]))
        model.policy.log_std.copy_(th.tensor([-0.3, 0.2]))
    return model


@cache
def sampled_and_exact(baseline: str | None, biased: bool = False) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """
    :return: ``N_UPDATES`` gradient estimates of REINFORCE's updates from one fixed policy, and the exact gradient of J
        at that policy (quadrature), for the policy's parameters
    """
    model = bandit_model(baseline=baseline)
    if biased:
        model.policy.action_dist = GaussianAtTheSquashedAction(2)
    exact = policy_gradient(model.policy, expected_reward(model.policy))
    return sampled_policy_gradients(model, N_UPDATES), exact


def largest_score(samples: dict[str, np.ndarray], exact: dict[str, np.ndarray]) -> tuple[float, float]:
    """:return: The largest |z-score| of the samples' mean against ``exact``, and the bound ``z_bound``"""
    scores = np.abs(z_scores(samples, exact))
    return float(scores.max()), z_bound(len(scores), len(next(iter(samples.values()))))


def test_quadrature_has_converged() -> None:
    # Far below the standard errors of the sampled means the tests resolve (about 1e-2)
    policy = bandit_model().policy
    for function in (expected_reward, squashed_entropy):
        assert function(policy, N_NODES).item() == pytest.approx(function(policy, 2 * N_NODES).item(), abs=1e-7)


@pytest.mark.parametrize("baseline", [None, "mean", "value"])
def test_mean_update_is_the_exact_gradient(baseline: str | None) -> None:
    """SquashedMlpPolicy's updates are unbiased: every component of their mean is within the bound of grad J's."""
    score, bound = largest_score(*sampled_and_exact(baseline))
    print(f"baseline {baseline}: max |z| {score:.2f}, bound {bound:.2f}")
    assert score <= bound


def test_log_density_at_the_squashed_action_fails_the_check() -> None:
    """The Gaussian log-density of a = tanh(u) taken as if it were u is biased: the same check, as many updates, fails."""
    score, bound = largest_score(*sampled_and_exact(None, biased=True))
    print(f"biased variant: max |z| {score:.2f}, bound {bound:.2f}")
    assert score > bound


def entropy_samples(policy: SquashedActorCriticPolicy, estimate, n_samples: int = 200, n_actions: int = 16):
    """
    ``n_samples`` estimates of the policy's entropy (averaged over ``OBSERVATIONS``), each from ``n_actions`` actions per
    observation, and of its gradient.

    :param estimate: Of the policy, observations and actions, one estimate per action
    :return: The values ``(n_samples,)`` and the gradients keyed like ``policy_gradient``
    """
    observations = th.as_tensor(OBSERVATIONS, device=policy.device).repeat(n_actions, 1)
    values, gradients = [], []
    for _ in range(n_samples):
        if policy.use_sde:
            # An exploration matrix per action: independent draws
            policy.reset_noise(len(observations))
        with th.no_grad():
            actions = policy.get_distribution(observations).get_actions()
        value = estimate(policy, observations, actions).mean()
        values.append(value.item())
        gradients.append(policy_gradient(policy, value))
    return np.array(values), {name: np.stack([gradient[name] for gradient in gradients]) for name in gradients[0]}


def evaluated_entropy(policy, observations, actions):
    """What REINFORCE's entropy term averages: the third output of ``evaluate_actions``."""
    return policy.evaluate_actions(observations, actions)[2]


def minus_log_prob(policy, observations, actions):
    """SB3 PPO's stand-in when the entropy is None."""
    return -policy.evaluate_actions(observations, actions)[1]


def squashed_policy(**kwargs) -> SquashedActorCriticPolicy:
    policy = SquashedActorCriticPolicy(ContinuousBandit.observation_space, BOUNDS, lambda _: 0.1, net_arch=[8], **kwargs)
    with th.no_grad():
        policy.action_net.weight.mul_(100.0)
        policy.action_net.bias.copy_(th.tensor([0.5, -0.4]))
        policy.log_std.add_(0.2)
    return policy


@pytest.mark.parametrize("use_sde", [False, True], ids=["gaussian", "gSDE"])
def test_entropy_estimate_and_its_gradient_are_unbiased(use_sde: bool) -> None:
    th.manual_seed(0)
    policy = squashed_policy(use_sde=use_sde)
    exact_value = squashed_entropy(policy)
    exact = policy_gradient(policy, exact_value)
    values, gradients = entropy_samples(policy, evaluated_entropy)
    value_score = abs(values.mean() - exact_value.item()) / (values.std(ddof=1) / np.sqrt(len(values)))
    score, bound = largest_score(gradients, exact)
    print(f"entropy {exact_value.item():.4f}: |z| of the value {value_score:.2f}, max |z| of the gradient {score:.2f}")
    assert value_score <= z_bound(1, len(values))
    assert score <= bound
    # SB3 PPO's stand-in, minus the log-probability: its gradient is a score, zero on average
    _, stand_in_gradients = entropy_samples(policy, minus_log_prob)
    stand_in_score, _ = largest_score(stand_in_gradients, exact)
    print(f"minus the log-probability: max |z| of the gradient {stand_in_score:.2f} (bound {bound:.2f})")
    assert stand_in_score > bound


def test_entropy_estimate_is_finite_at_saturated_actions() -> None:
    gaussian = th.distributions.Normal(th.tensor([[20.0, -20.0]], requires_grad=True), th.tensor([[0.1, 0.1]]))
    estimate = squashed_gaussian_entropy(gaussian, th.tanh(gaussian.mean.detach()))
    estimate.sum().backward()
    assert th.isfinite(estimate).all() and th.isfinite(gaussian.mean.grad).all()


def test_entropy_bonus_raises_the_entropy() -> None:
    # A constant reward: only the entropy term moves the policy, from a narrow one with saturated actions. With SB3
    # PPO's stand-in (evaluate_actions returning None) the entropy ended at -8.5, -3.9 and -8.0 on seeds 0-2
    model = REINFORCE(
        "SquashedMlpPolicy",
        make_vec_env(lambda: gym.wrappers.TransformReward(ContinuousBandit(), lambda _: 0.0), n_envs=4, seed=0),
        n_episodes=4,
        baseline=None,
        ent_coef=1.0,
        learning_rate=0.05,
        policy_kwargs=dict(net_arch=[8], log_std_init=-2.0),
        seed=0,
    )
    with th.no_grad():
        model.policy.action_net.bias.copy_(th.tensor([2.0, -2.0]))
    before = squashed_entropy(model.policy).item()
    model.learn(4 * 20)
    assert squashed_entropy(model.policy).item() > before + 5.0


# --- bounds, save/load, refusals ---


@pytest.mark.parametrize("bias", [30.0, -30.0, 0.0])
def test_actions_stay_within_asymmetric_bounds(bias: float) -> None:
    # The bandit refuses any action outside BOUNDS; at tanh's 1, SB3's rescaling alone rounds past the upper bound
    model = REINFORCE("SquashedMlpPolicy", make_vec_env(ContinuousBandit, n_envs=2, seed=0), n_episodes=4, seed=0)
    if bias:
        # Every action saturates: tanh rounds to 1 (bias 30) or -1 (bias -30)
        with th.no_grad():
            model.policy.action_net.bias.fill_(bias)
            model.policy.log_std.fill_(-3.0)
    model.learn(8)
    received = np.concatenate([env.actions for env in model.env.get_attr("unwrapped")])
    assert len(received) == 8
    observations = np.repeat(OBSERVATIONS, 4, axis=0)
    for deterministic in (True, False):
        actions, _ = model.predict(observations, deterministic=deterministic)
        assert all(BOUNDS.contains(action) for action in actions)
    if bias:
        bound = BOUNDS.high if bias > 0 else BOUNDS.low
        np.testing.assert_array_equal(received, np.broadcast_to(bound, received.shape))
        np.testing.assert_array_equal(actions, np.broadcast_to(bound, actions.shape))


def test_squashed_distribution_with_and_without_gsde() -> None:
    for use_sde in (False, True):
        model = REINFORCE("SquashedMlpPolicy", ContinuousBandit(), use_sde=use_sde, seed=0)
        assert model.policy.squash_output
        if use_sde:
            # SB3's gSDE distribution, with its tanh bijector
            assert model.policy.action_dist.bijector is not None
        else:
            assert type(model.policy.action_dist) is SquashedDiagGaussianDistribution
        # SB3's own path samples it: the fast path's diagonal Gaussian would not squash
        assert not fast_sampling(model.policy)


def test_log_prob_is_that_of_the_action_taken() -> None:
    # log pi(a|s) of the stored (squashed) action: the Gaussian's at u = atanh(a), minus log(1 - a^2), as long as
    # float32 gives u back (|u| < 5 here)
    policy = squashed_policy()
    observations = th.as_tensor(OBSERVATIONS)
    gaussian = policy.get_distribution(observations).distribution
    pre_tanh = gaussian.mean + gaussian.stddev * th.randn(gaussian.mean.shape, generator=th.Generator().manual_seed(0))
    assert pre_tanh.abs().max() < 5
    expected = gaussian.log_prob(pre_tanh).sum(dim=-1) - th.log(1 - th.tanh(pre_tanh) ** 2).sum(dim=-1)
    _, log_prob, _ = policy.evaluate_actions(observations, th.tanh(pre_tanh))
    th.testing.assert_close(log_prob, expected, atol=1e-3, rtol=0)


def test_squashed_model_and_policy_save_load(tmp_path: Path) -> None:
    model = REINFORCE("SquashedMlpPolicy", ContinuousBandit(), n_episodes=2, policy_kwargs=dict(net_arch=[8]), seed=0)
    model.learn(4)
    model.save(tmp_path / "model.zip")
    model.policy.save(tmp_path / "policy.pth")
    loaded = REINFORCE.load(tmp_path / "model.zip", env=ContinuousBandit())
    loaded_policy = SquashedActorCriticPolicy.load(tmp_path / "policy.pth")
    for policy in (loaded.policy, loaded_policy):
        assert type(policy) is SquashedActorCriticPolicy
        assert type(policy.action_dist) is SquashedDiagGaussianDistribution
        assert policy.net_arch == [8]
    for deterministic in (True, False):
        predictions = []
        for predictor in (model, loaded, loaded_policy):
            th.manual_seed(0)
            predictions.append(predictor.predict(OBSERVATIONS, deterministic=deterministic)[0])
        np.testing.assert_array_equal(predictions[0], predictions[1])
        np.testing.assert_array_equal(predictions[0], predictions[2])
    loaded.learn(4)
    # Two updates saved, two more
    assert loaded._n_updates == 4


def test_squashed_policy_refuses_other_spaces() -> None:
    with pytest.raises(TypeError, match="SquashedMlpPolicy bounds Box actions, got the action space Discrete"):
        REINFORCE("SquashedMlpPolicy", "CartPole-v1")
    unbounded = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
    with pytest.raises(ValueError, match="bounds: they must be finite"):
        SquashedActorCriticPolicy(ContinuousBandit.observation_space, unbounded, lambda _: 1e-3)


def test_squash_output_without_gsde_names_the_squashed_policy() -> None:
    # SB3 asserts it (under python -O its policy would rescale an unbounded Gaussian past the bounds)
    with pytest.raises(ValueError, match="use policy='SquashedMlpPolicy'"):
        REINFORCE("MlpPolicy", ContinuousBandit(), policy_kwargs=dict(squash_output=True))
    # SB3's squashed gSDE stays available
    model = REINFORCE("MlpPolicy", ContinuousBandit(), use_sde=True, policy_kwargs=dict(squash_output=True))
    assert model.policy.squash_output


def test_squashed_policy_from_a_zoo_entry() -> None:
    model = REINFORCE(**get_hyperparameters("reinforce", "Pendulum-v1", seed=0, overrides={"policy": "SquashedMlpPolicy"}))
    assert type(model.policy) is SquashedActorCriticPolicy
    # 4 envs, 4 episodes of 200 steps: one update
    model.learn(200)
    assert model._n_updates == 1


# --- the options REINFORCE takes from SB3 and rl-zoo3 ---


def test_normalize_entry_builds_saves_and_loads_vec_normalize(tmp_path: Path) -> None:
    # normalize: true (as the MuJoCo entries) normalises observations and rewards, with the entry's gamma
    env = get_hyperparameters("reinforce", "Pendulum-v1", seed=0, overrides={"normalize": True})["env"]
    assert isinstance(env, VecNormalize) and env.norm_obs and env.norm_reward and env.gamma == 0.9
    # The zoo saves the training statistics next to the model; enjoy's env (create_test_env) loads them, frozen
    zoo_main(
        f"train --algo reinforce --env Pendulum-v1 -n 400 -f {tmp_path} --seed 0 --eval-freq -1 --verbose 0 "
        "--hyperparams normalize:True n_envs:1 n_episodes:1".split()
    )
    stats_path = tmp_path / "reinforce" / "Pendulum-v1_1" / "Pendulum-v1"
    saved = VecNormalize.load(str(stats_path / "vecnormalize.pkl"), make_vec_env("Pendulum-v1"))
    assert saved.norm_obs and saved.norm_reward
    # Every observation of the 400 steps (and of the first reset) updated the statistics
    assert saved.obs_rms.count == pytest.approx(401, abs=1) and saved.ret_rms.count == pytest.approx(400, abs=1)
    hyperparams, stats_folder = get_saved_hyperparams(str(stats_path))
    test_env = create_test_env("Pendulum-v1", stats_path=stats_folder, hyperparams=hyperparams, should_render=False)
    assert isinstance(test_env, VecNormalize)
    assert not test_env.training and not test_env.norm_reward
    np.testing.assert_array_equal(test_env.obs_rms.mean, saved.obs_rms.mean)
    np.testing.assert_array_equal(test_env.obs_rms.var, saved.obs_rms.var)


@pytest.mark.parametrize("policy", ["MlpPolicy", "SquashedMlpPolicy"])
def test_orthogonal_initialisation(policy: str) -> None:
    # SB3's: orthogonal layers, gain sqrt(2) in the MLP, 0.01 for the action head (actions start near the mean 0),
    # 1 for the value head. The zoo entry's policy_kwargs "dict(ortho_init=False)" turns it off (PyTorch's default)
    overrides = {"policy": policy, "policy_kwargs": "dict(net_arch=[64, 64], ortho_init=False)"}
    for ortho_init, model in (
        (True, REINFORCE(policy, "Pendulum-v1", policy_kwargs=dict(net_arch=[64, 64]), seed=0)),
        (False, REINFORCE(**get_hyperparameters("reinforce", "Pendulum-v1", seed=0, overrides=overrides))),
    ):
        assert model.policy.ortho_init is ortho_init
        action_head = th.linalg.svdvals(model.policy.action_net.weight.detach())
        hidden_layer = th.linalg.svdvals(model.policy.mlp_extractor.policy_net[2].weight.detach())
        if ortho_init:
            th.testing.assert_close(action_head, th.full_like(action_head, 0.01))
            th.testing.assert_close(hidden_layer, th.full_like(hidden_layer, math.sqrt(2)))
        else:
            # PyTorch's uniform initialisation: a 1 x 64 head of norm about 1/sqrt(3)
            assert action_head.max() > 0.3
            assert hidden_layer.max() < 1.3


@pytest.mark.parametrize("policy", ["MlpPolicy", "SquashedMlpPolicy"])
def test_learned_log_std_is_state_independent(policy: str) -> None:
    model = REINFORCE(policy, make_vec_env(ContinuousBandit, n_envs=4, seed=0), n_episodes=4, learning_rate=1e-2, seed=0)
    # One parameter per action dimension, log_std_init (0) at first
    assert model.policy.log_std.shape == (2,)
    assert th.equal(model.policy.log_std.detach(), th.zeros(2, device=model.device))
    log_std_before = model.policy.log_std.detach().clone()
    observations = th.as_tensor(OBSERVATIONS, device=model.device)
    std = model.policy.get_distribution(observations).distribution.stddev
    # The same standard deviation whatever the observation (the means differ)
    assert th.equal(std, std[:1].expand_as(std))
    assert not th.equal(*model.policy.get_distribution(observations).distribution.mean[:2])
    model.learn(40)
    assert not th.equal(model.policy.log_std.detach(), log_std_before)
    # gSDE's standard deviation, by contrast, depends on the observation (through the latent features)
    gsde = REINFORCE(policy, ContinuousBandit(), use_sde=True, seed=0)
    gsde_std = gsde.policy.get_distribution(observations).distribution.stddev
    assert not th.equal(gsde_std, gsde_std[:1].expand_as(gsde_std))


def test_linear_schedule_decreases_the_logged_learning_rate(tmp_path: Path) -> None:
    # lin_0.01 in a zoo entry: 0.01 * the progress remaining, as measured after each batch's collection
    kwargs = get_hyperparameters(
        "reinforce", "Pendulum-v1", seed=0, overrides={"learning_rate": "lin_0.01", "n_envs": 1, "n_episodes": 1}
    )
    model = REINFORCE(**kwargs)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(1000)
    rows = (tmp_path / "progress.csv").read_text().splitlines()
    header = rows[0].split(",")
    values = [dict(zip(header, row.split(","), strict=True)) for row in rows[1:]]
    # SB3 dumps the logs of an iteration before its update: row k holds update k - 1, made after row k - 1's steps
    learning_rates = [float(row["train/learning_rate"]) for row in values[1:]]
    steps = [int(row["time/total_timesteps"]) for row in values[:-1]]
    assert len(learning_rates) == 4
    assert learning_rates == pytest.approx([0.01 * (1 - step / 1000) for step in steps])
    assert all(later < earlier for earlier, later in pairwise(learning_rates))


class ConstantObservation(gym.Env):
    """Episodes of 10 steps, the same observation at every step; every action received is kept in ``actions``."""

    observation_space = spaces.Box(-1, 1, shape=(2,), dtype=np.float32)
    action_space = spaces.Box(-1, 1, shape=(2,), dtype=np.float32)

    def __init__(self):
        super().__init__()
        self.actions: list[np.ndarray] = []
        self.step_index = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.step_index = 0
        return OBSERVATIONS[0], {}

    def step(self, action):
        self.actions.append(np.array(action))
        self.step_index += 1
        return OBSERVATIONS[0], float(action[0]), False, self.step_index >= 10, {}


@pytest.mark.parametrize("policy", ["MlpPolicy", "SquashedMlpPolicy"])
@pytest.mark.parametrize("sde_sample_freq", [-1, 4])
def test_gsde_resamples_its_noise_every_sde_sample_freq_steps(policy: str, sde_sample_freq: int) -> None:
    # With gSDE an action is a function of the observation and of the exploration matrix: at a constant observation,
    # the actions change exactly where the matrix is drawn again (every sde_sample_freq steps, and at each batch)
    env = ConstantObservation()
    model = REINFORCE(policy, env, n_episodes=2, use_sde=True, sde_sample_freq=sde_sample_freq, learning_rate=1e-2, seed=0)
    parameters_before = th.nn.utils.parameters_to_vector(model.policy.parameters()).detach().clone()
    model.learn(40)
    assert model._n_updates == 2
    actions = np.array(model.env.get_attr("unwrapped")[0].actions)
    changes = np.flatnonzero(np.any(actions[1:] != actions[:-1], axis=1)) + 1
    block = 20 if sde_sample_freq == -1 else sde_sample_freq
    assert changes.tolist() == list(range(block, 40, block))
    # It trains: the mean, its exploration parameters and the value function moved
    assert not th.equal(th.nn.utils.parameters_to_vector(model.policy.parameters()), parameters_before)
