"""
Each REINFORCE estimator against the exact policy gradient of a known MDP, and PPO's clip objective (Figure 1).

Prints a markdown table: the exact gradient norm, and for every (estimator, gamma_weighting, baseline) the relative
error of the mean of the updates' estimates, ||mean - exact|| / ||exact||, the largest |z-score| of a parameter
component ((mean - exact) / standard error), whether it is within the bound of an unbiased estimator (Bonferroni over
the components: a false alarm in under 0.1% of the rows), and the per-episode variance (trace of the covariance).
Writes ``ppo_clip_objective.png`` to ``--output``.

    python examples/gradient_check.py
    python examples/gradient_check.py --env FrozenLake-v1 --horizon 12 --gamma 0.99 --episodes 1000

The default (a random 4-state MDP, horizon 8, gamma 0.8, 1000 episodes per row in 50 updates of 20) shows every
gamma-weighted estimator within the bound and the variants without eq. (6)'s gamma^h far outside it (docs/planning.md
holds the measured table). On slippery FrozenLake the goal is reached in about 2% of short episodes: the table there
is mostly noise at 1000 episodes.
"""

import argparse
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist

import gymnasium as gym
import matplotlib
import numpy as np
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_reinforce import REINFORCE
from sb3_reinforce.exact import TabularMDP, TabularMDPEnv, exact_policy_gradient, ppo_clip_term
from sb3_reinforce.reinforce import sampled_policy_gradients

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# Chance that an unbiased row is flagged, over all the components of the row
FALSE_ALARM = 1e-3
VARIANTS = [
    ("episode_return", True, None),
    ("episode_return", True, "value"),
    ("reward_to_go", True, None),
    ("reward_to_go", True, "value"),
    ("reward_to_go", False, None),
    ("reward_to_go", False, "value"),
]


def make_problem(env_id: str, gamma: float, horizon: int) -> tuple[TabularMDP, Callable[[], gym.Env]]:
    """The known MDP and a function that makes an env sampling it, episodes cut after ``horizon`` transitions."""
    if env_id == "random":
        mdp = TabularMDP.random(n_states=4, n_actions=3, gamma=gamma, horizon=horizon, seed=1)
        return mdp, lambda: gym.wrappers.TimeLimit(TabularMDPEnv(mdp), horizon)

    def make_env() -> gym.Env:
        return gym.make(env_id, max_episode_steps=horizon)

    return TabularMDP.from_env(make_env(), gamma=gamma, horizon=horizon), make_env


def z_bound(n_components: int, n_samples: int) -> float:
    """
    The bound on the largest |z-score| of an unbiased row, exceeded with probability below ``FALSE_ALARM``: Bonferroni
    over the components, each z-score following Student's t with ``n_samples - 1`` degrees of freedom (the normal
    quantile and its first two corrections in 1 / dof, Abramowitz and Stegun 26.7.5).
    """
    z = NormalDist().inv_cdf(1 - FALSE_ALARM / (2 * n_components))
    dof = n_samples - 1
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


def gradient_table(env_id: str, gamma: float, horizon: int, n_episodes: int, batch: int) -> str:
    mdp, make_env = make_problem(env_id, gamma, horizon)
    n_updates = n_episodes // batch
    rows = []
    for estimator, gamma_weighting, baseline in VARIANTS:
        model = REINFORCE(
            "MlpPolicy",
            # One env per episode of a batch: the episodes of an update are collected side by side
            make_vec_env(make_env, n_envs=batch, seed=0),
            learning_rate=0.1,
            n_episodes=batch,
            gamma=gamma,
            estimator=estimator,
            gamma_weighting=gamma_weighting,
            baseline=baseline,
            max_grad_norm=None,
            policy_kwargs=dict(net_arch=[8], optimizer_class=th.optim.SGD),
            seed=0,
        )
        with th.no_grad():  # the same policy, away from uniform, for every row
            th.manual_seed(0)
            model.policy.action_net.weight.normal_(0.0, 1.0)
        names = [name for name, _ in model.policy.named_parameters() if "value" not in name]
        exact = np.concatenate([exact_policy_gradient(model, mdp)[name].cpu().numpy().ravel() for name in names])
        samples = sampled_policy_gradients(model, n_updates)
        estimates = np.concatenate([samples[name].reshape(n_updates, -1) for name in names], axis=1)
        error = np.linalg.norm(estimates.mean(axis=0) - exact) / np.linalg.norm(exact)
        # An update averages ``batch`` independent episodes: an episode's estimate has ``batch`` times its variance
        variance = batch * estimates.var(axis=0, ddof=1).sum()
        # Components never moved (zero variance) are left out: their z-score is undefined
        with np.errstate(divide="ignore", invalid="ignore"):
            z_scores = (estimates.mean(axis=0) - exact) / (estimates.std(axis=0, ddof=1) / np.sqrt(n_updates))
        max_z = np.abs(z_scores[np.isfinite(z_scores)]).max()
        bound = z_bound(len(exact), n_updates)
        within = "yes" if max_z < bound else "no"
        rows.append(
            f"| {estimator} | {gamma_weighting} | {baseline} | {error:.3f} | {max_z:.1f} | {bound:.1f} | {within} "
            f"| {variance:.4g} |"
        )
    header = [
        f"{env_id}, horizon {horizon}, gamma {gamma}, {n_episodes} episodes per row ({n_updates} updates of {batch}), "
        f"exact ||grad J|| = {np.linalg.norm(exact):.4g}",
        "",
        "| estimator | gamma_weighting | baseline | relative error of the mean | max abs z-score | bound "
        "| within the bound: matches exact | variance per episode |",
        "|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(header + rows)


def plot_clip_objective(path: Path, clip_range: float = 0.2) -> None:
    """The lecture's Figure 1: one term of PPO's clipped objective against the policy ratio, for A > 0 and A < 0."""
    ratios = np.linspace(0.0, 2.0, 401)
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True)
    for axis, advantage in zip(axes, (1.0, -1.0), strict=True):
        axis.plot(ratios, ratios * advantage, "--", color="grey", label="r A (surrogate L)")
        clipped = ppo_clip_term(ratios, np.full_like(ratios, advantage), clip_range)
        axis.plot(ratios, clipped, lw=2, label="min(r A, clip(r) A)")
        for bound in (1 - clip_range, 1 + clip_range):
            axis.axvline(bound, color="red", lw=0.8, ls=":")
        axis.axvline(1.0, color="black", lw=0.6)
        axis.set_title(f"A {'>' if advantage > 0 else '<'} 0")
        axis.set_xlabel("policy ratio r = pi_theta(a|s) / pi_old(a|s)")
        axis.legend(loc="upper left" if advantage > 0 else "lower left", fontsize=8)
    axes[0].set_ylabel("objective term")
    figure.suptitle(f"PPO clipped objective, clip range {clip_range} (red: 1 - eps, 1 + eps)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="random", help="'random' (a random 4-state MDP) or a gymnasium toy-text id")
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--gamma", type=float, default=0.8)
    parser.add_argument("--episodes", type=int, default=1000, help="episodes per row")
    parser.add_argument("--batch", type=int, default=20, help="episodes per update (one env each)")
    parser.add_argument("--output", type=Path, default=Path("gradient_check"))
    args = parser.parse_args(argv)
    th.set_num_threads(1)

    if args.episodes // args.batch < 2:
        parser.error("--episodes must be at least twice --batch")
    args.output.mkdir(parents=True, exist_ok=True)
    table = gradient_table(args.env, args.gamma, args.horizon, args.episodes, args.batch)
    (args.output / "gradient_table.md").write_text(table + "\n")
    plot_clip_objective(args.output / "ppo_clip_objective.png")
    print(table)
    print(f"\nwrote {args.output / 'gradient_table.md'} and {args.output / 'ppo_clip_objective.png'}")


if __name__ == "__main__":
    main()
