"""
Sample efficiency of REINFORCE from its zoo config, and of every lecture variant, over several seeds.

For each env: train for the budget (the zoo config's ``n_timesteps`` unless ``--steps``), then evaluate the
deterministic policy on 20 episodes (the table), and the policy with sampled actions, the one REINFORCE optimises,
on the same 20 episodes (printed per seed below the table). The first row is the zoo config; with ``--variants``,
the other rows change only (estimator, gamma_weighting, baseline), so users see the trade-offs between the lecture's
estimators.

    python benchmarks/sample_efficiency.py --env CartPole-v1 --seeds 5 --variants --jobs 2
    python benchmarks/sample_efficiency.py --env Acrobot-v1 --seeds 5 --jobs 2
    python benchmarks/sample_efficiency.py --env LunarLander-v3 --seeds 5 --first-seed 5 --jobs 2
"""

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import sync_envs_normalization

from sb3_reinforce import REINFORCE
from sb3_reinforce.zoo.hyperparams import get_hyperparameters, get_n_timesteps, make_eval_env

# (estimator, gamma_weighting, baseline): every combination the class accepts
VARIANTS = [
    (estimator, gamma_weighting, baseline)
    for estimator, weightings in (("reward_to_go", (True, False)), ("episode_return", (True,)))
    for gamma_weighting in weightings
    for baseline in ("value", "mean", None)
]
TARGETS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "LunarLander-v3": 200.0}


def train_and_evaluate(env_id: str, seed: int, steps: int, overrides: dict[str, Any]) -> tuple[float, float, float]:
    """
    :return: Mean evaluation return over 20 episodes of the deterministic policy, then of the policy with sampled
        actions, and the wall time of training
    """
    th.set_num_threads(1)
    model = REINFORCE(**{**get_hyperparameters("reinforce", env_id, seed=seed), **overrides})
    start = time.perf_counter()
    model.learn(steps)
    elapsed = time.perf_counter() - start
    mean_rewards = []
    for deterministic in (True, False):
        eval_env = make_eval_env("reinforce", env_id, seed=seed + 1000)
        sync_envs_normalization(model.get_env(), eval_env)
        mean_reward, _ = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=deterministic)
        mean_rewards.append(float(mean_reward))
    return mean_rewards[0], mean_rewards[1], elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="train with seeds first-seed .. first-seed+seeds-1")
    parser.add_argument("--steps", type=int, help="training budget (default: the zoo config's n_timesteps)")
    parser.add_argument("--variants", action="store_true", help="also run every (estimator, gamma_weighting, baseline)")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    steps = args.steps or get_n_timesteps("reinforce", args.env)
    target = TARGETS.get(args.env, gym.spec(args.env).reward_threshold)
    rows: list[tuple[str, dict[str, Any]]] = [("zoo config", {})]
    if args.variants:
        rows += [
            (
                f"{estimator}, gamma_weighting={weighting}, baseline={baseline}",
                dict(estimator=estimator, gamma_weighting=weighting, baseline=baseline, bootstrap_truncated=False),
            )
            for estimator, weighting, baseline in VARIANTS
        ]

    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {
            (name, seed): pool.submit(train_and_evaluate, args.env, seed, steps, overrides)
            for name, overrides in rows
            for seed in seeds
        }
        results = {key: future.result() for key, future in futures.items()}

    print(f"{args.env}: {steps:,} steps, seeds {seeds.start}-{seeds.stop - 1}, deterministic evaluation on 20 episodes")
    print(f"| REINFORCE | mean ± std over seeds | worst seed | seeds >= {target} | train time / run (s) |")
    print("|---|---|---|---|---|")
    returns = {name: np.array([results[name, seed][0] for seed in seeds]) for name, _ in rows}
    for name, _ in rows:
        times = [results[name, seed][2] for seed in seeds]
        reached = int(np.sum(returns[name] >= target))
        print(
            f"| {name} | {returns[name].mean():.1f} ± {returns[name].std():.1f} | {returns[name].min():.1f} "
            f"| {reached}/{args.seeds} | {np.mean(times):.0f} |"
        )
    print("\nPer seed, deterministic policy | sampled actions:")
    for name, _ in rows:
        sampled = [results[name, seed][1] for seed in seeds]
        print(
            f"{name}: {', '.join(f'{value:.1f}' for value in returns[name])} "
            f"| {', '.join(f'{value:.1f}' for value in sampled)}"
        )


if __name__ == "__main__":
    main()
