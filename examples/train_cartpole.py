"""
The main job: train REINFORCE on CartPole-v1 and print the evaluation result.

The settings are those of the packaged zoo entry (``zoo_configs/reinforce.yml``, ``CartPole-v1``): 8 envs, 8 complete
episodes per update, a learning rate decreasing linearly from 5e-3 to 0, gamma 0.99, the reward-to-go without its
gamma^h factor, the value baseline and normalised weights.
"""

import time

import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.utils import LinearSchedule

from sb3_reinforce import REINFORCE


def main() -> None:
    th.set_num_threads(1)
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = REINFORCE(
        "MlpPolicy",
        env,
        # lin_0.005 in the zoo entry: 5e-3 at the start, 0 at the end of training
        learning_rate=LinearSchedule(start=5e-3, end=0.0, end_fraction=1.0),
        n_episodes=8,
        gamma=0.99,
        estimator="reward_to_go",
        gamma_weighting=False,
        baseline="value",
        normalize_advantage=True,
        policy_kwargs=dict(net_arch=[64, 64]),
        seed=0,
        verbose=0,
    )
    start = time.perf_counter()
    # No progress bar: progress_bar=True needs tqdm and rich (pip install -e ".[extra]")
    model.learn(total_timesteps=100_000)
    elapsed = time.perf_counter() - start
    model.save("reinforce_cartpole")

    model = REINFORCE.load("reinforce_cartpole")
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=1)
    mean_reward, std_reward = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=True)
    print(f"REINFORCE on CartPole-v1: {model.num_timesteps} steps in {elapsed:.1f} s")
    print(f"evaluation over 20 episodes (deterministic): {mean_reward:.1f} +/- {std_reward:.1f} (max 500)")


if __name__ == "__main__":
    main()
