"""
Bad values refused up front, one table per way in: REINFORCE's constructor (every argument, own and inherited: a new
argument without a row fails ``test_every_argument_has_a_row``), ``REINFORCE.load`` overrides, zoo YAML entries and
``sb3_reinforce.exact``'s inputs. Each raises ``ValueError`` or ``TypeError`` naming the argument and the allowed values,
before anything is collected or trained; ``compare``'s command line exits with status 2 and the reason, before any run.
"""

import inspect
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from gymnasium import spaces

from sb3_reinforce import REINFORCE
from sb3_reinforce import exact as E
from sb3_reinforce.exact import TabularMDP
from sb3_reinforce.zoo import get_hyperparameters
from sb3_reinforce.zoo.compare import main as compare_main


class TupleObservationEnv(gym.Env):
    """An env whose observation space REINFORCE does not support."""

    observation_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))
    action_space = spaces.Discrete(2)


# (argument, bad value, error, message): at least one row for every argument of REINFORCE.__init__
CONSTRUCTOR_ROWS = [
    (
        "policy",
        "FooPolicy",
        ValueError,
        r"policy must be one of \['CnnPolicy', 'MlpPolicy', 'MultiInputPolicy', 'SquashedMlpPolicy'\]",
    ),
    ("policy", 3, TypeError, "policy must be one of .* or an ActorCriticPolicy subclass"),
    ("env", None, TypeError, "env must be a gymnasium env, a VecEnv or a registered env id"),
    ("env", TupleObservationEnv(), TypeError, "does not support the observation space Tuple.*; supported: Box"),
    ("learning_rate", np.nan, ValueError, "learning_rate must be a finite float >= 0 or a schedule"),
    ("learning_rate", -1e-3, ValueError, "learning_rate must be a finite float >= 0 or a schedule"),
    ("learning_rate", "1e-3", TypeError, "learning_rate must be a finite float >= 0 or a schedule"),
    ("n_episodes", 0, ValueError, "n_episodes must be an int >= 1"),
    ("n_episodes", 8.0, TypeError, "n_episodes must be an int >= 1"),
    # Each episode takes at least one step: such a batch could never end
    ("n_episodes", 10**9, ValueError, "n_episodes=1000000000 cannot fit in max_batch_steps=1000000"),
    ("gamma", True, TypeError, r"gamma must be a float in \[0, 1\]"),
    ("gamma", "0.9", TypeError, r"gamma must be a float in \[0, 1\]"),
    ("gamma", np.nan, ValueError, r"gamma must be a float in \[0, 1\]"),
    ("gamma", 1.5, ValueError, r"gamma must be a float in \[0, 1\]"),
    ("estimator", "foo", ValueError, r"Unknown estimator 'foo', allowed values: \('episode_return', 'reward_to_go'\)"),
    # A YAML "no" or "False" in quotes is a truthy string: it would turn the option on
    ("gamma_weighting", "no", TypeError, "gamma_weighting must be True or False"),
    ("baseline", "none", ValueError, r"Unknown baseline 'none', allowed values: \(None, 'mean', 'value'\)"),
    ("normalize_advantage", "no", TypeError, "normalize_advantage must be True or False"),
    ("ent_coef", np.nan, ValueError, "ent_coef must be a finite float >= 0"),
    ("ent_coef", np.inf, ValueError, "ent_coef must be a finite float >= 0"),
    ("ent_coef", "0.01", TypeError, "ent_coef must be a finite float >= 0"),
    ("ent_coef", -0.01, ValueError, "ent_coef must be a finite float >= 0"),
    ("vf_coef", np.nan, ValueError, "vf_coef must be a finite float >= 0"),
    ("max_grad_norm", 0.0, ValueError, r"max_grad_norm must be a float > 0 or None \(no clipping\)"),
    ("max_grad_norm", "0.5", TypeError, r"max_grad_norm must be a float > 0 or None \(no clipping\)"),
    ("target_kl", -0.01, ValueError, r"target_kl must be a float > 0 or None \(no limit\)"),
    ("n_critic_updates", -1, ValueError, "n_critic_updates must be an int >= 0"),
    ("critic_batch_size", 0, ValueError, "critic_batch_size must be an int >= 1"),
    ("bootstrap_truncated", "False", TypeError, "bootstrap_truncated must be True or False"),
    ("max_batch_steps", 0, ValueError, "max_batch_steps must be an int >= 1"),
    ("max_batch_bytes", 2e9, TypeError, "max_batch_bytes must be an int >= 1"),
    ("use_sde", "yes", TypeError, "use_sde must be True or False"),
    ("sde_sample_freq", 2.5, TypeError, "sde_sample_freq must be an int"),
    ("sde_sample_freq", -2, ValueError, r"sde_sample_freq must be -1 \(only at the start of each batch\) or an int >= 0"),
    ("stats_window_size", 0, ValueError, "stats_window_size must be an int >= 1"),
    ("tensorboard_log", 3, TypeError, "tensorboard_log must be None or a folder path"),
    ("policy_kwargs", "dict(net_arch=[8])", TypeError, "policy_kwargs must be None or a dict"),
    ("verbose", 3, ValueError, "verbose must be 0, 1 or 2"),
    ("verbose", "1", TypeError, "verbose must be 0, 1 or 2"),
    ("seed", -1, TypeError, "seed must be None or an int >= 0"),
    ("seed", 1.5, TypeError, "seed must be None or an int >= 0"),
    ("device", "gpu", ValueError, "device must be 'auto', 'cpu', 'cuda'"),
    ("device", 3, TypeError, "device must be 'auto', 'cpu', 'cuda'"),
    ("_init_setup_model", "no", TypeError, "_init_setup_model must be True or False"),
]

# Values fine alone, refused together
COMBINATION_ROWS = [
    (dict(estimator="episode_return", gamma_weighting=False), ValueError, "gamma_weighting=False only applies"),
    (dict(baseline="mean", n_episodes=1), ValueError, "baseline='mean' .* needs n_episodes >= 2"),
    (dict(baseline=None, n_critic_updates=1), ValueError, "n_critic_updates=1 fits the value head: it needs baseline="),
    (dict(baseline="mean", bootstrap_truncated=True), ValueError, "bootstrap_truncated=True .* needs baseline='value'"),
    (dict(use_sde=True), ValueError, "gSDE.* can only be used with continuous actions"),
    # SB3 squashes gSDE's actions only (it asserts so); the tanh-squashed Gaussian without gSDE is a policy of its own
    (dict(policy_kwargs=dict(squash_output=True)), ValueError, "needs use_sde=True .* use policy='SquashedMlpPolicy'"),
]

# The hyperparameters that load() takes as overrides and checks like the constructor
LOAD_OVERRIDES = {
    "n_episodes",
    "gamma",
    "estimator",
    "gamma_weighting",
    "baseline",
    "normalize_advantage",
    "ent_coef",
    "vf_coef",
    "max_grad_norm",
    "target_kl",
    "n_critic_updates",
    "critic_batch_size",
    "bootstrap_truncated",
    "max_batch_steps",
    "max_batch_bytes",
}

# (key, value as written in a YAML entry, error, message): what YAML's own typing lets through
YAML_ROWS = [
    ("gamma", "'0.99'", TypeError, r"gamma must be a float in \[0, 1\], got '0.99'"),
    ("normalize_advantage", "'no'", TypeError, "normalize_advantage must be True or False, got 'no'"),
    ("n_episodes", "8.5", TypeError, "n_episodes must be an int >= 1, got 8.5"),
    ("estimator", "foo", ValueError, "Unknown estimator 'foo'"),
    ("baseline", "none", ValueError, "Unknown baseline 'none'"),
    ("policy", "FooPolicy", ValueError, "policy must be one of"),
    # YAML reads 1e-3 as a string: rl-zoo3 would take it for a schedule and fail to unpack it
    ("learning_rate", "1e-3", ValueError, r"learning_rate of the reinforce entry .* string '1e-3'.*!!float 1e-3"),
]


def test_every_argument_has_a_row() -> None:
    arguments = set(inspect.signature(REINFORCE.__init__).parameters) - {"self"}
    assert arguments == {argument for argument, *_ in CONSTRUCTOR_ROWS}


@pytest.mark.parametrize("argument, value, error, message", CONSTRUCTOR_ROWS)
def test_constructor_refuses(argument: str, value: object, error: type[Exception], message: str) -> None:
    arguments = {"policy": "MlpPolicy", "env": "CartPole-v1", argument: value}
    with pytest.raises(error, match=message):
        REINFORCE(**arguments)


@pytest.mark.parametrize("kwargs, error, message", COMBINATION_ROWS)
def test_constructor_refuses_combination(kwargs: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        REINFORCE("MlpPolicy", "CartPole-v1", **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [dict(normalize_advantage=np.bool_(True)), dict(gamma=np.float32(0.9)), dict(ent_coef=0), dict(device=th.device("cpu"))],
)
def test_numpy_int_and_device_values_are_accepted(kwargs: dict) -> None:
    REINFORCE("MlpPolicy", "CartPole-v1", **kwargs)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("validation") / "model.zip"
    REINFORCE("MlpPolicy", "CartPole-v1", seed=0).save(path)
    return path


@pytest.mark.parametrize("argument, value, error, message", [row for row in CONSTRUCTOR_ROWS if row[0] in LOAD_OVERRIDES])
def test_load_override_refused(saved_model: Path, argument: str, value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        REINFORCE.load(saved_model, **{argument: value})


def test_every_load_override_has_a_row() -> None:
    assert LOAD_OVERRIDES <= {argument for argument, *_ in CONSTRUCTOR_ROWS}


@pytest.mark.parametrize("key, yaml_value, error, message", YAML_ROWS)
def test_zoo_yaml_value_refused(tmp_path: Path, key: str, yaml_value: str, error: type[Exception], message: str) -> None:
    config = tmp_path / "reinforce.yml"
    config.write_text(f"CartPole-v1:\n  policy: 'MlpPolicy'\n  n_envs: 2\n  n_timesteps: 1000\n  {key}: {yaml_value}\n")
    # The test's premise: YAML hands these over with the wrong type, or as the string the pitfall makes
    assert key in yaml.safe_load(config.read_text())["CartPole-v1"]
    with pytest.raises(error, match=message):
        REINFORCE(**get_hyperparameters("reinforce", "CartPole-v1", conf_file=str(config)))


GRID = ["--env", "CartPole-v1", "--algos", "reinforce", "-n", "100"]

# (compare's arguments, message): argparse's exit status 2 with the message, before the grid is printed
COMPARE_ROWS = [
    ([], "the following arguments are required: --env, --algos"),
    (["--env", "CartPole-v1", "--algos", "nope"], "unknown algorithm(s) ['nope']"),
    (["--env", "NoSuchEnv-v0", "--algos", "ppo"], "unknown environment 'NoSuchEnv-v0'"),
    ([*GRID, "--seeds", "4-2"], "a seed is a non-negative int or a range"),
    ([*GRID, "--seeds", "0-2", "--held-out-seeds", "2"], "share [2]"),
    (["--env", "CartPole-v1", "--algos", "reinforce", "-n", "0"], "argument -n/--n-timesteps: expected an int >= 1, got '0'"),
    ([*GRID, "--eval-freq", "0"], "argument --eval-freq: expected an int >= 1, got '0'"),
    ([*GRID, "--eval-episodes", "0"], "argument --eval-episodes: expected an int >= 1, got '0'"),
    ([*GRID, "--jobs", "0"], "argument --jobs: expected an int >= 1, got '0'"),
    ([*GRID, "--num-threads", "0"], "argument --num-threads: expected an int >= 1, got '0'"),
    ([*GRID, "--device", "gpu"], "argument --device: expected a PyTorch device such as cpu, cuda or cuda:1, got 'gpu'"),
    ([*GRID, "--jobs", "2", "--cluster", "tcp://127.0.0.1:1"], "--cluster trains the runs on the cluster's workers"),
    ([*GRID, "--report-only", "--jobs", "2"], "--report-only trains nothing: it takes no --jobs or --cluster"),
    ([*GRID, "--report-only", "--cluster", "tcp://127.0.0.1:1"], "--report-only trains nothing"),
    ([*GRID, "--set", "gamma"], "a hyperparameter override is name=value"),
    ([*GRID, "--set", "gamma=0.9", "n_episodes=2", "gamma=0.8"], "--set names gamma more than once in one row"),
    # A --set value is checked by building the model of every (env, algo, variant) once, before any run
    ([*GRID, "--set", "gamma=2"], "reinforce on CartPole-v1 with {'gamma': 2}: gamma must be a float in [0, 1]"),
    ([*GRID, "--set", "estimator=foo"], "reinforce on CartPole-v1 with {'estimator': 'foo'}: Unknown estimator 'foo'"),
]


@pytest.mark.parametrize("argv, message", COMPARE_ROWS)
def test_compare_refuses(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        compare_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err


MDP = TabularMDP.random(3, 2, gamma=0.9, seed=0)
FINITE_MDP = TabularMDP.random(3, 2, gamma=1.0, horizon=3, seed=0)
UNIFORM = np.full((3, 2), 0.5)
P, R, D0 = MDP.transitions, MDP.rewards, MDP.initial_distribution

# (description, call, error, message) for the inputs of sb3_reinforce.exact
EXACT_ROWS = [
    ("n_states 0", lambda: TabularMDP.random(0, 2, gamma=0.9), ValueError, "n_states must be an int >= 1"),
    ("n_states 2.5", lambda: TabularMDP.random(2.5, 2, gamma=0.9), TypeError, "n_states must be an int >= 1"),
    ("n_actions 0", lambda: TabularMDP.random(3, 0, gamma=0.9), ValueError, "n_actions must be an int >= 1"),
    ("seed -1", lambda: TabularMDP.random(3, 2, gamma=0.9, seed=-1), ValueError, "seed must be an int >= 0"),
    (
        "termination nan",
        lambda: TabularMDP.random(3, 2, 0.9, termination_probability=np.nan),
        ValueError,
        "termination_probability",
    ),
    ("gamma 1.5", lambda: TabularMDP(P, R, 1.5, D0), ValueError, r"gamma must be in \[0, 1\]"),
    ("gamma True", lambda: TabularMDP(P, R, True, D0), TypeError, r"gamma must be a float in \[0, 1\]"),
    ("gamma 1, no horizon", lambda: TabularMDP(P, R, 1.0, D0), ValueError, "gamma=1 is only allowed with a finite horizon"),
    ("transitions negative", lambda: TabularMDP(-P, R, 0.9, D0), ValueError, "transitions must contain finite, non-negative"),
    (
        "transitions sum 1.8",
        lambda: TabularMDP(2 * P, R, 0.9, D0),
        ValueError,
        "each row of transitions must sum to at most 1",
    ),
    ("transitions shape", lambda: TabularMDP(P[:2], R, 0.9, D0), ValueError, r"transitions must have shape \(S, A, S\)"),
    (
        "rewards inf",
        lambda: TabularMDP(P, R * np.inf, 0.9, D0),
        ValueError,
        r"rewards must be a finite array of shape \(S, A\)",
    ),
    ("rewards text", lambda: TabularMDP(P, np.full(R.shape, "a"), 0.9, D0), TypeError, "rewards must be an array of numbers"),
    (
        "d_0 sum 2",
        lambda: TabularMDP(P, R, 0.9, 2 * D0),
        ValueError,
        "each distribution in initial_distribution must sum to 1",
    ),
    ("d_0 shape", lambda: TabularMDP(P, R, 0.9, D0[:2]), ValueError, r"initial_distribution must have shape \(3,\)"),
    ("horizon 0", lambda: TabularMDP(P, R, 0.9, D0, horizon=0), ValueError, "horizon must be None .* or a positive int"),
    ("horizon 2.0", lambda: TabularMDP(P, R, 0.9, D0, horizon=2.0), TypeError, "horizon must be None .* or a positive int"),
    ("from_env n_resets 0", lambda: TabularMDP.from_env(gym.make("FrozenLake-v1"), 0.9, n_resets=0), ValueError, "n_resets"),
    ("from_env CartPole", lambda: TabularMDP.from_env(gym.make("CartPole-v1"), 0.9), TypeError, r"env\.unwrapped\.P"),
    ("pi shape", lambda: MDP.evaluate(np.full((2, 3), 0.5)), ValueError, r"pi must have shape \(3, 2\)"),
    ("pi sum 0.9", lambda: MDP.evaluate(0.9 * UNIFORM), ValueError, "each distribution in pi must sum to 1"),
    ("pi nan", lambda: MDP.evaluate(np.nan * UNIFORM), ValueError, "pi must contain finite, non-negative probabilities"),
    ("pi text", lambda: E.policy_evaluation(MDP, "x"), TypeError, "pi must be an array of numbers"),
    ("softmax theta nan", lambda: E.softmax_policy(np.full((3, 2), np.nan)), ValueError, "theta must be a finite array"),
    ("gradient theta inf", lambda: E.policy_gradient(MDP, np.full((3, 2), np.inf)), ValueError, "theta must be a finite"),
    ("eq. (2) without horizon", lambda: E.trajectory_policy_gradient(MDP, np.zeros((3, 2))), ValueError, "finite horizon"),
    (
        "eq. (4) pi shape",
        lambda: E.action_value_policy_gradient(np.full((2, 2), 0.5), MDP.evaluate(UNIFORM)),
        ValueError,
        "pi",
    ),
    ("eq. (4) evaluation", lambda: E.action_value_policy_gradient(UNIFORM, "x"), TypeError, "evaluation must be the Policy"),
    ("ascent lr nan", lambda: E.policy_gradient_ascent(MDP, np.nan, 3), ValueError, "learning_rate must be a positive float"),
    ("ascent lr text", lambda: E.policy_gradient_ascent(MDP, "1", 3), TypeError, "learning_rate must be a positive float"),
    ("ascent n -1", lambda: E.policy_gradient_ascent(MDP, 1.0, -1), ValueError, "n_iterations must be an int >= 0"),
    ("value iteration tol 0", lambda: E.value_iteration(MDP, tolerance=0.0), ValueError, "tolerance must be a positive float"),
    (
        "value iteration max 0",
        lambda: E.value_iteration(MDP, max_iterations=0),
        ValueError,
        "max_iterations must be an int >= 1",
    ),
    ("clip ratio -1", lambda: E.ppo_clip_term(-1.0, 1.0), ValueError, "ratio must be finite and non-negative"),
    ("clip range text", lambda: E.ppo_clip_term(1.0, 1.0, "0.2"), TypeError, "clip_range must be a positive float"),
    ("clip advantage nan", lambda: E.ppo_clip_term(1.0, np.nan), ValueError, "advantage must be finite"),
    ("surrogate pi_new", lambda: E.surrogate_objective(MDP, UNIFORM, np.full((2, 2), 0.5)), ValueError, "pi_new must have"),
    ("PDL pi_new sum", lambda: E.performance_difference(MDP, UNIFORM, 0.5 * UNIFORM), ValueError, "must sum to 1"),
    ("J(pi) numpy", lambda: E.differentiable_objective(MDP, UNIFORM), TypeError, "pi must be a torch.Tensor"),
    ("enumerate pi", lambda: next(E.enumerate_trajectories(FINITE_MDP, np.full((2, 2), 0.5))), ValueError, "pi must have"),
    ("env mdp", lambda: E.TabularMDPEnv("x"), TypeError, "mdp must be a TabularMDP"),
    ("env action 5", lambda: step_after_reset(5), ValueError, r"action must be an int in \[0, 2\)"),
]


def step_after_reset(action: int) -> None:
    env = E.TabularMDPEnv(MDP)
    env.reset(seed=0)
    env.step(action)


@pytest.mark.parametrize("call, error, message", [row[1:] for row in EXACT_ROWS], ids=[row[0] for row in EXACT_ROWS])
def test_exact_input_refused(call, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_tabular_env_steps_only_after_reset() -> None:
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        E.TabularMDPEnv(MDP).step(0)
