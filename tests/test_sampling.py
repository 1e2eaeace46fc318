"""
The rollout fast path (``sb3_reinforce/reinforce/sampling.py``) against SB3's ``get_distribution(obs).get_actions()``,
its fallback to SB3's path, and what ``collect_rollouts`` checks once per batch instead of once per step.
"""

from statistics import NormalDist

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import CategoricalDistribution
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_reinforce import REINFORCE
from sb3_reinforce.reinforce import SquashedActorCriticPolicy
from sb3_reinforce.reinforce.sampling import _direct_actor, _sample_categorical, action_sampler, fast_sampling
from tests.envs import CountingEnv

ACTION_SPACES = {
    "Discrete": spaces.Discrete(3),
    "MultiDiscrete": spaces.MultiDiscrete([3, 2, 4]),
    "Box": spaces.Box(-1, 1, shape=(2,)),
    "MultiBinary": spaces.MultiBinary(3),
}
# One policy class per kind of observation the fast path reads (flat, image, Dict)
OBSERVATION_SPACES = {
    "flat": (ActorCriticPolicy, spaces.Box(-1, 1, shape=(4,))),
    # Channel first, as VecTransposeImage hands images to the policy
    "image": (ActorCriticCnnPolicy, spaces.Box(0, 255, shape=(1, 36, 36), dtype=np.uint8)),
    "dict": (
        MultiInputActorCriticPolicy,
        spaces.Dict({"position": spaces.Box(-1, 1, shape=(3,)), "cell": spaces.Discrete(4)}),
    ),
}


def make_policy(
    action_space: spaces.Space,
    observation: str = "flat",
    policy_class: type[ActorCriticPolicy] | None = None,
    **kwargs,
) -> ActorCriticPolicy:
    """A policy in evaluation mode whose actions are far from uniform (SB3 initialises action_net with gain 0.01)."""
    default_class, observation_space = OBSERVATION_SPACES[observation]
    policy = (policy_class or default_class)(observation_space, action_space, lambda _: 1e-3, **kwargs)
    policy.set_training_mode(False)
    with th.no_grad():
        policy.action_net.weight.mul_(300)
        if hasattr(policy, "log_std"):
            policy.log_std.copy_(th.linspace(-0.5, 0.3, policy.log_std.numel()).reshape(policy.log_std.shape))
    return policy


def observations(policy: ActorCriticPolicy, n: int, seed: int = 0):
    """``n`` observations of the policy's space as one tensor batch (a dict of them for a Dict space)."""
    space = policy.observation_space
    space.seed(seed)
    samples = [space.sample() for _ in range(n)]
    if isinstance(space, spaces.Dict):
        stacked = {key: np.stack([sample[key] for sample in samples]) for key in space.spaces}
        return obs_as_tensor(stacked, policy.device)
    return obs_as_tensor(np.stack(samples), policy.device)


def sb3_actions(policy: ActorCriticPolicy, obs) -> th.Tensor:
    """SB3's path: what A2C's and PPO's collection sample."""
    with th.no_grad():
        return policy.get_distribution(obs).get_actions()


def assert_same_draws(policy: ActorCriticPolicy, obs, seeds: range) -> None:
    """The sampler of ``policy`` and SB3's path draw the same actions, and leave torch's generator in the same state."""
    sample = action_sampler(policy)
    for seed in seeds:
        th.manual_seed(seed)
        actions = sample(obs)
        generator_state = th.get_rng_state()
        th.manual_seed(seed)
        expected = sb3_actions(policy, obs)
        assert actions.dtype == expected.dtype and actions.shape == expected.shape
        assert th.equal(actions, expected), f"seed {seed}"
        assert th.equal(generator_state, th.get_rng_state()), f"seed {seed}"


@pytest.mark.parametrize("n_envs", [1, 8, 64])
@pytest.mark.parametrize("action", ACTION_SPACES)
def test_fast_path_draws_sb3_actions(action, n_envs):
    # Gaussian and Bernoulli: the same primitive on the same tensors, bit for bit. Categorical: the same exponential
    # race with probabilities that differ from torch's in the last bits only; no draw of these seeds differs
    # (about 1e-7 per draw would). 1 env and 64 envs: torch's normal_() has a scalar path below 16 numbers
    policy = make_policy(ACTION_SPACES[action])
    assert fast_sampling(policy)
    assert_same_draws(policy, observations(policy, n_envs), range(50))


@pytest.mark.parametrize("observation", ["image", "dict"])
@pytest.mark.parametrize("action", ["Discrete", "Box"])
def test_fast_path_reads_image_and_dict_observations_as_sb3(observation, action):
    policy = make_policy(ACTION_SPACES[action], observation)
    assert fast_sampling(policy)
    assert_same_draws(policy, observations(policy, 8), range(10))


@pytest.mark.parametrize("activation_fn", [th.nn.Tanh, th.nn.ReLU])
@pytest.mark.parametrize("action", ACTION_SPACES)
def test_default_mlp_actor_runs_as_torch_functions(action, activation_fn):
    # The MLP policy's actor without nn.Module calls: the same parameters, so the same draws, bit for bit
    policy = make_policy(ACTION_SPACES[action], activation_fn=activation_fn, net_arch=[16, 8])
    assert _direct_actor(policy) is not None
    assert_same_draws(policy, observations(policy, 8), range(20))


@pytest.mark.parametrize("action", ["Discrete", "Box"])
def test_default_mlp_actor_flattens_matrix_observations(action):
    # A Box observation of shape (2, 3) reaches the actor as a (batch, 2, 3) tensor: flattened as FlattenExtractor does
    policy = ActorCriticPolicy(spaces.Box(-1, 1, shape=(2, 3)), ACTION_SPACES[action], lambda _: 1e-3, net_arch=[16])
    policy.set_training_mode(False)
    assert _direct_actor(policy) is not None
    assert_same_draws(policy, observations(policy, 8), range(10))


def shift_logits(module, inputs, output):
    """A forward hook that changes the actor's output: a path that skips hooks draws other actions."""
    return output + th.arange(output.shape[-1], dtype=output.dtype)


MODULE_PATH_CASES = {
    "forward hook": lambda policy: policy.action_net.register_forward_hook(shift_logits),
    "forward pre-hook": lambda policy: policy.mlp_extractor.policy_net[0].register_forward_pre_hook(
        lambda module, inputs: (inputs[0] * 3,)
    ),
    "global forward hook": lambda policy: th.nn.modules.module.register_module_forward_hook(shift_logits),
    "forward replaced on an instance": lambda policy: setattr(
        policy.action_net, "forward", lambda x: th.nn.Linear.forward(policy.action_net, x) + 1.0
    ),
    "other activation": None,
    "in-place ReLU": None,
    "image": None,
}


@pytest.mark.parametrize("case", MODULE_PATH_CASES)
def test_modules_are_called_where_they_may_do_more_than_forward(case):
    # Hooks and other modules: the actor is called module by module, as SB3 calls it
    observation = "image" if case == "image" else "flat"
    activation_fn = {"other activation": th.nn.ELU, "in-place ReLU": lambda: th.nn.ReLU(inplace=True)}.get(case, th.nn.Tanh)
    policy = make_policy(ACTION_SPACES["Discrete"], observation, activation_fn=activation_fn)
    handle = MODULE_PATH_CASES[case](policy) if MODULE_PATH_CASES[case] else None
    try:
        assert fast_sampling(policy)
        assert _direct_actor(policy) is None
        assert_same_draws(policy, observations(policy, 8), range(20))
    finally:
        if handle is not None:
            handle.remove()


def action_frequency_z_scores(draws: th.Tensor, probs: th.Tensor) -> np.ndarray:
    """(count - n p) / sqrt(n p (1 - p)) for every action: about standard normal when actions are drawn with ``probs``."""
    n = len(draws)
    counts = th.bincount(draws, minlength=len(probs)).double()
    probs = probs.double()
    return ((counts - n * probs) / th.sqrt(n * probs * (1 - probs))).numpy()


def test_exponential_race_draws_the_softmax_distribution():
    # The race on softmax(logits) without torch's logsumexp normalisation: its own statistical test, on 400,000 draws
    logits = th.tensor([1.0, 0.0, -1.0, 2.0, -3.0])
    probs = th.softmax(logits, dim=0)
    n = 400_000
    rows = logits.repeat(n, 1)
    # Bonferroni over the actions: a correct sampler fails with probability 1e-4
    bound = NormalDist().inv_cdf(1 - 1e-4 / (2 * len(logits)))
    th.manual_seed(0)
    assert np.abs(action_frequency_z_scores(_sample_categorical(rows), probs)).max() < bound

    # The same race with uniform instead of exponential times: a plausible slip, and a different distribution
    th.manual_seed(0)
    biased = th.argmax(th.softmax(rows, dim=-1) / th.rand_like(rows), dim=-1)
    assert np.abs(action_frequency_z_scores(biased, probs)).max() > bound


class OverriddenForward(ActorCriticPolicy):
    """A custom policy class: SB3's path may go through what it overrides."""

    def forward(self, obs, deterministic=False):
        return super().forward(obs, deterministic)


class CustomCategorical(CategoricalDistribution):
    """A custom distribution: only SB3's path knows how it samples."""


FALLBACKS = {
    "gSDE": dict(action="Box", use_sde=True),
    "gSDE squash_output": dict(action="Box", use_sde=True, squash_output=True),
    # A SquashedDiagGaussianDistribution: a DiagGaussianDistribution subclass, which the fast path would not squash
    "SquashedMlpPolicy": dict(action="Box", policy_class=SquashedActorCriticPolicy),
    "custom policy class": dict(action="Discrete", policy_class=OverriddenForward),
    "custom distribution": dict(action="Discrete"),
    "get_distribution replaced on the instance": dict(action="Box"),
}


@pytest.mark.parametrize("case", FALLBACKS)
def test_other_policies_take_sb3_path(case):
    kwargs = dict(FALLBACKS[case])
    policy = make_policy(ACTION_SPACES[kwargs.pop("action")], **kwargs)
    if case == "custom distribution":
        policy.action_dist = CustomCategorical(policy.action_space.n)
    if case == "get_distribution replaced on the instance":
        sb3_get_distribution = policy.get_distribution
        policy.get_distribution = lambda obs: sb3_get_distribution(obs)
    if policy.use_sde:
        policy.reset_noise(8)
    assert not fast_sampling(policy)
    assert_same_draws(policy, observations(policy, 8), range(10))


class CountingPolicy(ActorCriticPolicy):
    """SB3's policy, counting the calls of SB3's sampling path."""

    calls = 0

    def get_distribution(self, obs):
        CountingPolicy.calls += 1
        return super().get_distribution(obs)


class CallsAtRolloutEnd(BaseCallback):
    """Records the ``get_distribution`` calls made by each collection (training may make others)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def _on_rollout_start(self) -> None:
        CountingPolicy.calls = 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.calls.append((CountingPolicy.calls, self.model.num_timesteps))


def test_collection_of_a_custom_policy_goes_through_its_get_distribution():
    model = REINFORCE(CountingPolicy, make_vec_env(CountingEnv, n_envs=2), n_episodes=4, seed=0)
    callback = CallsAtRolloutEnd()
    model.learn(16, callback=callback)
    # One call per vectorised step: 2 episodes of 4 steps per env
    assert callback.calls == [(8, 16)]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_learning_is_the_same_on_both_paths(env_id):
    # A subclass that changes nothing takes SB3's path; same seed, so the same initial parameters, actions and updates
    class SB3Path(ActorCriticPolicy):
        pass

    parameters = []
    for policy in (ActorCriticPolicy, SB3Path):
        model = REINFORCE(policy, make_vec_env(env_id, n_envs=4, seed=0), n_episodes=4, seed=0)
        assert fast_sampling(model.policy) == (policy is ActorCriticPolicy)
        model.learn(3000)
        parameters.append(th.nn.utils.parameters_to_vector(model.policy.parameters()))
    assert th.equal(*parameters)


class StepCounter(BaseCallback):
    def __init__(self):
        super().__init__()
        self.n_steps = 0

    def _on_step(self) -> bool:
        self.n_steps += 1
        return True


def test_one_callback_step_per_vectorised_step_and_the_batch_episodes_logged():
    # Quotas (2, 1) of episodes of 4 steps: env 0 needs 8 steps; env 1 ends 2 episodes meanwhile (one outside the batch)
    model = REINFORCE("MlpPolicy", make_vec_env(CountingEnv, n_envs=2), n_episodes=3, seed=0)
    callback = StepCounter()
    model.learn(1, callback=callback)
    assert callback.n_steps == 8 and model.num_timesteps == 16
    # The logged episodes are the batch's 3, not env 1's second one (outside the batch)
    assert [(info["r"], info["l"]) for info in model.ep_info_buffer] == [(4.0, 4)] * 3


class RewardAt(CountingEnv):
    """CountingEnv whose reward at its ``bad_step``-th step (counted over all its episodes) is ``reward``."""

    def __init__(self, bad_step: int, reward: float, length: int = 4):
        super().__init__(length)
        self.bad_step, self.bad_reward, self.steps_taken = bad_step, reward, 0

    def step(self, action):
        observation, reward, terminated, truncated, info = super().step(action)
        self.steps_taken += 1
        return observation, self.bad_reward if self.steps_taken == self.bad_step else reward, terminated, truncated, info


def test_non_finite_reward_names_its_timestep_after_the_batch():
    # Three envs; env 1 gets inf at its 3rd step: vectorised step 3, timestep 9, although the batch goes on after it
    env = DummyVecEnv([lambda: CountingEnv(), lambda: RewardAt(3, np.inf), lambda: CountingEnv()])
    model = REINFORCE("MlpPolicy", env, n_episodes=3, seed=0)
    before = th.nn.utils.parameters_to_vector(model.policy.parameters()).clone()
    with pytest.raises(ValueError, match=r"Non-finite reward \[1\.0, inf, 1\.0\] at timestep 9 \(update 0\)"):
        model.learn(100)
    assert th.equal(before, th.nn.utils.parameters_to_vector(model.policy.parameters()))


def test_non_finite_reward_outside_the_batch_is_not_used():
    # Quotas (1, 1): env 1's second episode (steps 5 to 8) is outside the batch while env 0 runs its longer episode
    env = DummyVecEnv([lambda: CountingEnv(length=8), lambda: RewardAt(6, np.nan)])
    model = REINFORCE("MlpPolicy", env, n_episodes=2, seed=0)
    model.learn(1)
    assert model._n_updates == 1


class NanObservation(gym.Wrapper):
    """Observations turn NaN after the first step."""

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation * np.nan, reward, terminated, truncated, info


@pytest.mark.parametrize(
    ("env_id", "error"),
    [
        ("CartPole-v1", r"Expected parameter logits .* found invalid values"),
        ("Pendulum-v1", r"Non-finite reward \[nan, nan\]"),
    ],
)
def test_non_finite_action_parameters_never_reach_the_parameters(env_id, error):
    # SB3's path raises in torch's argument validation at once; the fast path samples NaN logits / means without a
    # check (one per step would cost about 2% of CartPole's throughput), and the batch is refused before any update:
    # by torch's validation in evaluate_actions (NaN logits) or by the non-finite rewards of NaN actions (Pendulum)
    model = REINFORCE("MlpPolicy", make_vec_env(env_id, n_envs=2, wrapper_class=NanObservation), n_episodes=2, seed=0)
    before = th.nn.utils.parameters_to_vector(model.policy.parameters()).clone()
    with pytest.raises(ValueError, match=error):
        model.learn(100)
    assert th.equal(before, th.nn.utils.parameters_to_vector(model.policy.parameters()))
    assert model._n_updates == 0
