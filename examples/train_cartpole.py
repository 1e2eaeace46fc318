"""The main job: train REINFORCE on CartPole-v1 and print the evaluation result."""

import time

import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_reinforce import REINFORCE


def main() -> None:
    th.set_num_threads(1)
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = REINFORCE(
        "MlpPolicy",
        env,
        learning_rate=1e-2,
        n_episodes=8,
        estimator="reward_to_go",
        baseline="value",
        normalize_advantage=True,
        max_grad_norm=None,
        seed=0,
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=100_000, progress_bar=True)
    elapsed = time.perf_counter() - start
    model.save("reinforce_cartpole")

    model = REINFORCE.load("reinforce_cartpole")
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=1)
    mean_reward, std_reward = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=True)
    print(f"REINFORCE on CartPole-v1: {model.num_timesteps} steps in {elapsed:.1f} s")
    print(f"evaluation over 20 episodes (deterministic): {mean_reward:.1f} +/- {std_reward:.1f} (max 500)")


if __name__ == "__main__":
    main()
