import io
import json
import math
import pathlib
import zipfile
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.save_util import open_path
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import explained_variance, obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv
from torch.nn import functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from sb3_reinforce.reinforce.buffers import EpisodeBatch, EpisodeBuffer
from sb3_reinforce.reinforce.policies import (
    CnnPolicy,
    MlpPolicy,
    MultiInputPolicy,
    SquashedActorCriticPolicy,
    SquashedMlpPolicy,
)
from sb3_reinforce.reinforce.sampling import action_sampler

# Saved by every release of REINFORCE, by no SB3 algorithm
REINFORCE_ATTRIBUTES = frozenset({"n_episodes", "estimator", "baseline"})

SelfREINFORCE = TypeVar("SelfREINFORCE", bound="REINFORCE")

ESTIMATORS = ("episode_return", "reward_to_go")
BASELINES = (None, "mean", "value")
SUPPORTED_ACTION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
SUPPORTED_OBSERVATION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Dict)
DEFAULT_MAX_BATCH_BYTES = 2 * 2**30
# Halvings of a step that exceeds target_kl before it is undone
MAX_BACKTRACKS = 10
# Returns above this magnitude are named as the likely cause of a refused update
OVERFLOW_RETURN = 1e6
OVERFLOW_HINT = (
    " The returns are so large that squared gradients overflow float32: scale the rewards (e.g. VecNormalize with "
    "norm_reward=True) or set normalize_advantage=True."
)


class UpdateRefusedError(Exception):
    """A step of an update met a non-finite value; ``REINFORCE.train()`` restores the state and raises ValueError."""


class REINFORCE(OnPolicyAlgorithm):
    """
    REINFORCE: Monte Carlo policy gradient on batches of complete episodes.

    One update is one gradient step on ``n_episodes`` complete episodes sampled with the current policy,
    with either estimator of the lecture's policy gradient theorem:

    - ``estimator="episode_return"`` (REINFORCE-1, eq. 3): ``g = (R(tau) - b) * sum_h grad log pi(a_h|s_h)``
    - ``estimator="reward_to_go"`` (REINFORCE-2, eq. 6):
      ``g = sum_h gamma^h * grad log pi(a_h|s_h) * (sum_{h'>=h} gamma^(h'-h) r_h' - b_h)``

    Both are unbiased estimates of the gradient of the discounted objective J (``gamma_weighting=False``
    drops the ``gamma^h`` factor of eq. 6: a common, biased variant). A time-limit truncation ends the
    trajectory like a termination (the finite horizon H of the lecture) unless ``bootstrap_truncated=True``.

    Paper: https://link.springer.com/article/10.1007/BF00992696 (Williams, 1992)
    Code: this package; compare with SB3's A2C (https://github.com/DLR-RM/stable-baselines3)

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy, SquashedMlpPolicy: Box actions
        bounded by tanh, ...)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param n_episodes: Number of complete episodes per update (split as evenly as possible across the envs,
        each env contributing a fixed quota). ``n_episodes=1`` with one env is the lecture's Algorithm 1.
    :param gamma: Discount factor, in [0, 1]
    :param estimator: ``"episode_return"`` (eq. 3) or ``"reward_to_go"`` (eq. 6)
    :param gamma_weighting: With ``"reward_to_go"``, multiply the h-th term by ``gamma^h`` as in eq. (6)
        (unbiased for the gradient of J). ``False`` drops it: a common variant, biased towards
        the undiscounted-state-distribution gradient. Must stay ``True`` with ``"episode_return"``.
    :param baseline: ``None``; ``"mean"``: the leave-one-out mean over the *other* episodes of the batch
        (of R(tau) for eq. 3, of the reward-to-go at the same step h for eq. 6); ``"value"``: the value head,
        V(s_0) for eq. 3 and V(s_h) for eq. 6, computed before the update and regressed on the Monte Carlo
        reward-to-go (weighted by ``vf_coef``). Every choice leaves the expected gradient unchanged.
    :param normalize_advantage: Whether to normalise the weights (return minus baseline) over the batch to zero
        mean and unit variance before the ``gamma^h`` factor (biased, often practical)
    :param ent_coef: Entropy coefficient for the loss calculation. The entropy term is the mean over the batch's
        steps, as in A2C/PPO, while the policy term sums each episode's steps (eq. 3/6): relative to the policy
        term, a given ``ent_coef`` is about 1/(mean episode length) as strong as in A2C/PPO
    :param vf_coef: Value function coefficient for the loss calculation (only with ``baseline="value"``)
    :param max_grad_norm: The maximum value for the gradient clipping, ``None`` for no clipping
    :param target_kl: Upper bound on the KL divergence between the policies before and after an update (SB3 PPO's
        approximate KL, over the batch's steps). A step that exceeds it is halved, towards the parameters before the
        update, until it fits (a backtracking line search along the gradient step, as TRPO's), and undone after
        10 halvings. ``None``: no limit, every step is taken whole.
    :param n_critic_updates: With ``baseline="value"``, extra epochs of value regression on the batch after the
        update, in minibatches of ``critic_batch_size`` steps (as sb3-contrib's TRPO fits its critic). The weights
        of the update are computed before, so the baseline of a batch never depends on that batch's actions.
        ``0``: the value head only takes its share of the single joint gradient step.
    :param critic_batch_size: Minibatch size (steps) of the extra value regression
    :param bootstrap_truncated: With ``baseline="value"``, continue an episode cut by a time limit with
        ``gamma * V(s_H)`` as SB3 does (treats the time limit as not part of the task); ``False`` ends the
        trajectory at the time limit (the lecture's finite horizon)
    :param max_batch_steps: Upper bound on the transitions held for one batch (vectorised steps x n_envs);
        collection raises ``ValueError`` when a batch would need more. Memory grows with the episodes held.
    :param max_batch_bytes: Upper bound on the bytes of the episode buffer's arrays (observations in their space's
        dtype, actions, rewards, flags); collection raises ``ValueError`` when a batch would need more. The default,
        2 GiB, holds about 75,000 transitions of 84x84x4 uint8 images; growing the buffer copies it, so its peak is up
        to 1.5 times the bound, and the update also makes float32 tensors of the batch's observations.
    :param use_sde: Whether to use generalized State Dependent Exploration (gSDE)
        instead of action noise exploration (default: False)
    :param sde_sample_freq: Sample a new noise matrix every n steps when using gSDE
        Default: -1 (only sample at the beginning of the rollout)
    :param stats_window_size: Window size for the rollout logging, specifying the number of episodes to average
        the reported success rate, mean episode length, and mean reward over
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation
    :param verbose: Verbosity level: 0 for no output, 1 for info messages (such as device or wrappers used), 2 for
        debug messages
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
        "SquashedMlpPolicy": SquashedMlpPolicy,
    }
    # SB3's learn() hands self.rollout_buffer to collect_rollouts(): REINFORCE's holds complete episodes, it is no
    # RolloutBuffer (no GAE), hence the narrower type
    rollout_buffer: EpisodeBuffer  # type: ignore[assignment]

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-3,
        n_episodes: int = 8,
        gamma: float = 0.99,
        estimator: str = "reward_to_go",
        gamma_weighting: bool = True,
        baseline: str | None = "value",
        normalize_advantage: bool = False,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float | None = 0.5,
        target_kl: float | None = None,
        n_critic_updates: int = 0,
        critic_batch_size: int = 1024,
        bootstrap_truncated: bool = False,
        max_batch_steps: int = 1_000_000,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        _check_inherited_arguments(
            policy=policy,
            policy_aliases=self.policy_aliases,
            device=device,
            init_setup_model=_init_setup_model,
            learning_rate=learning_rate,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
        )
        # Made here (as SB3 would) so that an unsupported space gets a TypeError naming the supported ones
        env = maybe_make_env(env, verbose)
        if env is None and _init_setup_model:
            raise TypeError("env must be a gymnasium env, a VecEnv or a registered env id, got None")
        if env is not None:
            _check_spaces(env.observation_space, env.action_space)
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            # Unused: a batch is a number of complete episodes, not of steps
            n_steps=1,
            gamma=gamma,
            # Unused: returns are Monte Carlo, no GAE
            gae_lambda=1.0,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            # SB3 types it float; None (no clipping) is handled by REINFORCE's own train()
            max_grad_norm=max_grad_norm,  # type: ignore[arg-type]
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
            supported_action_spaces=SUPPORTED_ACTION_SPACES,
        )
        self.n_episodes = n_episodes
        self.estimator = estimator
        self.gamma_weighting = gamma_weighting
        self.baseline = baseline
        self.normalize_advantage = normalize_advantage
        self.target_kl = target_kl
        self.n_critic_updates = n_critic_updates
        self.critic_batch_size = critic_batch_size
        self.bootstrap_truncated = bootstrap_truncated
        self.max_batch_steps = max_batch_steps
        self.max_batch_bytes = max_batch_bytes
        # Whether the last collection ended before its batch was complete
        self._collection_stopped = False

        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        # Here rather than in __init__, so that the overrides of load(path, **kwargs) are checked too
        _check_hyperparameters(
            n_episodes=self.n_episodes,
            gamma=self.gamma,
            estimator=self.estimator,
            gamma_weighting=self.gamma_weighting,
            baseline=self.baseline,
            normalize_advantage=self.normalize_advantage,
            ent_coef=self.ent_coef,
            vf_coef=self.vf_coef,
            max_grad_norm=self.max_grad_norm,
            target_kl=self.target_kl,
            n_critic_updates=self.n_critic_updates,
            critic_batch_size=self.critic_batch_size,
            bootstrap_truncated=self.bootstrap_truncated,
            max_batch_steps=self.max_batch_steps,
            max_batch_bytes=getattr(self, "max_batch_bytes", DEFAULT_MAX_BATCH_BYTES),
        )
        _check_spaces(self.observation_space, self.action_space)
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.rollout_buffer = EpisodeBuffer(
            self.observation_space,
            self.action_space,
            n_envs=self.n_envs,
            gamma=self.gamma,
            max_steps=self.max_batch_steps,
            # Absent from the files of release 0.1.0
            max_bytes=getattr(self, "max_batch_bytes", DEFAULT_MAX_BATCH_BYTES),
            device=self.device,
        )
        # As in SB3's _setup_model: policy_class is an ActorCriticPolicy subclass (policy_aliases), typed BasePolicy
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, use_sde=self.use_sde, **self.policy_kwargs
        )
        self.policy = self.policy.to(self.device)
        self._maybe_recommend_cpu()

    def episode_quotas(self, n_envs: int) -> np.ndarray:
        """
        :param n_envs: Number of envs
        :return: How many episodes each env contributes to a batch (fixed, so the batch is an unbiased sample)
        """
        return np.array([self.n_episodes // n_envs + (i < self.n_episodes % n_envs) for i in range(n_envs)])

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        # SB3's learn() passes self.rollout_buffer, an EpisodeBuffer here (see the class attribute)
        rollout_buffer: EpisodeBuffer,  # type: ignore[override]
        n_rollout_steps: int,
    ) -> bool:
        """
        Collect a batch of complete episodes with the current policy: each env runs until it has finished its
        quota of episodes (``episode_quotas``); its later steps are taken (a VecEnv steps all envs) but not used.
        Envs left in the middle of an episode by the previous batch, or by a collection that was stopped (callback,
        exception), are reset first, so that no episode is continued across an update. Once the batch is collected, a
        non-finite reward in its episodes raises ``ValueError`` naming the timestep of the first one (before any update).

        :param env: The training environment
        :param callback: Callback that will be called at each step
            (and at the beginning and end of the rollout)
        :param rollout_buffer: Episode buffer to fill
        :param n_rollout_steps: Unused: a batch ends when every env has finished its quota of episodes
        :return: True if the batch is complete, False if a callback stopped the collection
        """
        assert self._last_obs is not None, "No previous observation was provided"
        assert self._last_episode_starts is not None
        self.policy.set_training_mode(False)

        # A collection stopped after env.step() but before its step was stored leaves _last_obs one step behind
        if self._collection_stopped or not np.all(self._last_episode_starts):
            # VecEnvObs includes tuples, which SB3's VecEnvs never return (as in SB3's _setup_learn)
            self._last_obs = env.reset()  # type: ignore[assignment]
            self._last_episode_starts = np.ones((env.num_envs,), dtype=bool)
        self._collection_stopped = True

        quotas = self.episode_quotas(env.num_envs)
        finished_episodes = np.zeros(env.num_envs, dtype=np.int64)
        # Whether each env's steps belong to the batch (its quota is not full yet)
        in_batch = finished_episodes < quotas
        n_steps = 0
        first_timestep = self.num_timesteps
        rollout_buffer.reset()
        if self.use_sde:
            self.policy.reset_noise(env.num_envs)
        # SB3's actions without its per-step distribution objects where the policy allows it (sampling.py)
        sample_actions = action_sampler(self.policy)

        callback.on_rollout_start()

        while in_batch.any():
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                self.policy.reset_noise(env.num_envs)

            # Not None: set by _setup_learn or the reset above (SB3's attribute is Optional)
            obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
            actions = sample_actions(obs_tensor).cpu().numpy()

            new_obs, rewards, dones, infos = env.step(self._env_actions(actions))

            self.num_timesteps += env.num_envs

            # Give access to local variables
            callback.update_locals(locals())
            if not callback.on_step():
                return False

            # Logged episodes (rollout/ep_rew_mean, ep_len_mean) are the batch's: an env past its quota ends the
            # episodes short enough to fit in the others' remaining steps, which would bias the mean low. Only an
            # ended episode has something to log
            if dones.any():
                batch_infos = [info for info, counted in zip(infos, in_batch, strict=True) if counted]
                self._update_info_buffer(batch_infos, dones[in_batch])
            n_steps += 1

            rollout_buffer.add(
                self._last_obs,  # type: ignore[arg-type]  # not None, as above
                actions,
                rewards,
                self._last_episode_starts,
                dones,
                in_batch,
                self._truncation_values(dones, infos) if self.bootstrap_truncated else None,
            )
            finished_episodes += dones & in_batch
            in_batch = finished_episodes < quotas
            self._last_obs = new_obs  # type: ignore[assignment]  # no tuple, as above
            self._last_episode_starts = dones

        # Checked once per batch, before any update: the first step of the batch's episodes with a non-finite reward
        stored_rewards = rollout_buffer.steps["rewards"][: rollout_buffer.pos]
        non_finite = ~np.isfinite(stored_rewards) & rollout_buffer.steps["in_batch"][: rollout_buffer.pos]
        if non_finite.any():
            step = int(np.flatnonzero(non_finite.any(axis=1))[0])
            raise ValueError(
                f"Non-finite reward {stored_rewards[step].tolist()} at timestep {first_timestep + (step + 1) * env.num_envs} "
                f"(update {self._n_updates}); the policy was not updated with it."
            )

        self._collection_stopped = False
        callback.update_locals(locals())
        callback.on_rollout_end()

        return True

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        """
        Rescale (squashed policies) and clip Box actions to the env's bounds, as SB3 does, in the action space's shape
        (the distribution samples them flat: ``(n_envs, action_dim)``).
        """
        if not isinstance(self.action_space, spaces.Box):
            return actions
        actions = actions.reshape((-1, *self.action_space.shape))
        if self.policy.squash_output:
            actions = self.policy.unscale_action(actions)
        # Squashed actions too: in float32 the rescaling of -1 or 1 can round an ulp past a bound
        return np.clip(actions, self.action_space.low, self.action_space.high)

    def _truncation_values(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        """V(s_H) of the last observation of each episode cut by a time limit, 0 elsewhere."""
        values = np.zeros(len(dones), dtype=np.float32)
        for idx, done in enumerate(dones):
            if done and infos[idx].get("TimeLimit.truncated", False) and infos[idx].get("terminal_observation") is not None:
                terminal_obs = self.policy.obs_to_tensor(infos[idx]["terminal_observation"])[0]
                with th.no_grad():
                    values[idx] = self.policy.predict_values(terminal_obs)[0].item()
        return values

    def _estimator_weights(self, batch: EpisodeBatch, values: th.Tensor) -> th.Tensor:
        """
        The weight of each ``grad log pi(a_h|s_h)`` term of the chosen estimator (eq. 3 or eq. 6).

        :param batch: The episodes of the batch
        :param values: V(s_h) of every step, computed before the update (no gradient)
        :return: One weight per step
        """
        first_steps = batch.episode_steps == 0
        episode_index = th.cumsum(first_steps.long(), dim=0) - 1

        if self.estimator == "episode_return":
            # eq. (3): every step of an episode is weighted by the whole discounted return R(tau)
            returns = batch.episode_returns
            if self.baseline == "mean":
                # Leave-one-out mean of the other episodes' returns
                baseline = (returns[first_steps].sum() - returns) / (batch.n_episodes - 1)
            elif self.baseline == "value":
                # V(s_0) of the episode's initial state
                baseline = values[first_steps][episode_index]
        else:
            # eq. (6): step h is weighted by the discounted reward-to-go from h
            returns = batch.rewards_to_go
            if self.baseline == "mean":
                # Leave-one-out mean of the other episodes' reward-to-go at the same step h (0 once ended)
                totals_per_step = th.zeros(int(batch.episode_steps.max()) + 1, device=returns.device)
                totals_per_step.index_add_(0, batch.episode_steps, returns)
                baseline = (totals_per_step[batch.episode_steps] - returns) / (batch.n_episodes - 1)
            elif self.baseline == "value":
                baseline = values

        advantages = returns if self.baseline is None else returns - baseline
        if self.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        if self.estimator == "reward_to_go" and self.gamma_weighting:
            advantages = self.gamma**batch.episode_steps * advantages
        return advantages

    def train(self) -> None:
        """
        Update policy using the batch of episodes in the buffer (one gradient step, shrunk to ``target_kl``),
        then fit the value head (``n_critic_updates``).
        """
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Every step of the update is checked; a refused one restores the state from before the update
        state_before = _cloned((self.policy.state_dict(), self.policy.optimizer.state_dict()))

        # Update optimizer learning rate
        self._update_learning_rate(self.policy.optimizer)

        batch = self.rollout_buffer.episode_batch()
        try:
            self._update(batch)
        except UpdateRefusedError as error:
            learning_rate = self.policy.optimizer.param_groups[0]["lr"]
            self.policy.load_state_dict(state_before[0])
            self.policy.optimizer.load_state_dict(state_before[1])
            self.policy.optimizer.zero_grad()
            largest_return = batch.rewards_to_go.abs().max().item() if len(batch.rewards_to_go) else 0.0
            raise ValueError(
                f"Update {self._n_updates + 1} at timestep {self.num_timesteps} refused: {error} "
                f"(learning rate {learning_rate:.3g}, largest |return| {largest_return:.3g}). "
                "Nothing of this update was applied: parameters and optimizer state are as before it."
                + (OVERFLOW_HINT if largest_return > OVERFLOW_RETURN else "")
            ) from None

    def _update(self, batch: EpisodeBatch) -> None:
        """
        The update of ``train()`` on one batch: the policy-gradient step, shrunk to ``target_kl``, then the extra
        epochs of value regression (``n_critic_updates``), then the logs.

        :param batch: The episodes of the batch
        :raises UpdateRefusedError: if a step meets a non-finite learning rate, loss, gradient, parameter or
            optimizer state (the caller restores the state from before the update)
        """
        learning_rate = self.policy.optimizer.param_groups[0]["lr"]
        if not (math.isfinite(learning_rate) and learning_rate >= 0):
            raise UpdateRefusedError(f"the learning rate is {learning_rate}, not a finite value >= 0")
        actions = batch.actions
        if isinstance(self.action_space, spaces.Discrete):
            # Convert discrete action from float to long
            actions = actions.long().flatten()

        values, log_prob, entropy = self.policy.evaluate_actions(batch.observations, actions)
        values = values.flatten()
        weights = self._estimator_weights(batch, values.detach())

        # Sum over each episode's steps, averaged over the (fixed) number of episodes:
        # with plain SGD the parameters move by exactly learning_rate * g_hat
        policy_loss = -(weights * log_prob).sum() / batch.n_episodes

        # Value loss: regression of V(s_h) on the Monte Carlo reward-to-go
        value_loss = F.mse_loss(batch.rewards_to_go, values) if self.baseline == "value" else th.zeros(())

        # Entropy loss favor exploration
        if entropy is None:
            # Approximate entropy when no analytical form, as SB3's PPO (its gradient is zero on average: a squashed
            # Gaussian of SquashedMlpPolicy returns an unbiased estimate of the entropy instead of None)
            entropy_loss = -th.mean(-log_prob)
        else:
            entropy_loss = -th.mean(entropy)

        loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

        # Optimization step
        self.policy.optimizer.zero_grad()
        loss.backward()
        self._check_finite_gradient(loss, "policy-gradient")

        if self.max_grad_norm is not None:
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        if self.target_kl is None:
            self.policy.optimizer.step()
        else:
            self._step_within_target_kl(batch, actions, self.target_kl)
        self._check_finite_state("policy-gradient")
        self._fit_value_function(batch)

        self._n_updates += 1
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/n_episodes", batch.n_episodes)
        self.logger.record("train/batch_steps", len(log_prob))
        self.logger.record("train/entropy_loss", entropy_loss.item())
        self.logger.record("train/policy_loss", policy_loss.item())
        if self.baseline == "value":
            self.logger.record("train/value_loss", value_loss.item())
            self.logger.record(
                "train/explained_variance",
                explained_variance(values.detach().cpu().numpy(), batch.rewards_to_go.cpu().numpy()),
            )
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())

    def _step_within_target_kl(self, batch: EpisodeBatch, actions: th.Tensor, target_kl: float) -> None:
        """
        The optimizer step, then a backtracking line search on it: halve it until the approximate KL divergence
        between the policies before and after is at most ``target_kl``; undo it after ``MAX_BACKTRACKS`` halvings.

        :param batch: The episodes of the batch
        :param actions: Their actions, as ``evaluate_actions`` takes them
        :param target_kl: The bound on the approximate KL divergence
        """
        log_prob_before = self._acting_log_prob(batch, actions)
        parameters_before = parameters_to_vector(self.policy.parameters()).detach()
        self.policy.optimizer.step()
        step = parameters_to_vector(self.policy.parameters()).detach() - parameters_before
        step_fraction = 1.0
        approx_kl = self._approx_kl(batch, actions, log_prob_before)
        for _ in range(MAX_BACKTRACKS):
            if approx_kl <= target_kl:
                break
            step_fraction /= 2
            vector_to_parameters(parameters_before + step_fraction * step, self.policy.parameters())
            approx_kl = self._approx_kl(batch, actions, log_prob_before)
        if not approx_kl <= target_kl:  # also undoes a step with a non-finite KL
            step_fraction = 0.0
            vector_to_parameters(parameters_before, self.policy.parameters())
            approx_kl = 0.0
        self.logger.record("train/approx_kl", approx_kl)
        self.logger.record("train/step_fraction", step_fraction)

    def _approx_kl(self, batch: EpisodeBatch, actions: th.Tensor, log_prob_before: th.Tensor) -> float:
        """SB3 PPO's estimate of KL(pi_before || pi) from the batch's actions: mean of (ratio - 1) - log(ratio)."""
        log_ratio = self._acting_log_prob(batch, actions) - log_prob_before
        return th.mean((th.exp(log_ratio) - 1) - log_ratio).item()

    def _acting_log_prob(self, batch: EpisodeBatch, actions: th.Tensor) -> th.Tensor:
        """
        log pi(a_h|s_h) of the policy as it acts: in eval mode, so that dropout does not count as a change of policy
        and the line search leaves batch norm's running statistics alone.

        :param batch: The episodes of the batch
        :param actions: Their actions, as ``evaluate_actions`` takes them
        :return: One log-probability per step
        """
        self.policy.set_training_mode(False)
        try:
            with th.no_grad():
                return self.policy.get_distribution(batch.observations).log_prob(actions)
        finally:
            self.policy.set_training_mode(True)

    def _fit_value_function(self, batch: EpisodeBatch) -> None:
        """
        ``n_critic_updates`` epochs of minibatch regression of V(s_h) on the reward-to-go. Only the critic's own
        parameters (``critic_parameters``) are stepped: the policy's outputs stay as the policy-gradient step left
        them, also with a features extractor shared with the actor (which then is not fitted here).
        """
        n_steps = len(batch.rewards_to_go)
        critic_parameters = self.critic_parameters()
        other_parameters = [parameter for parameter in self.policy.parameters() if parameter not in critic_parameters]
        for _ in range(self.n_critic_updates):
            for indices in th.randperm(n_steps, device=self.device).split(self.critic_batch_size):
                observations = (
                    {key: obs[indices] for key, obs in batch.observations.items()}
                    if isinstance(batch.observations, dict)
                    else batch.observations[indices]
                )
                values = self.policy.predict_values(observations).flatten()
                value_loss = F.mse_loss(batch.rewards_to_go[indices], values)
                self.policy.optimizer.zero_grad()
                value_loss.backward()
                self._check_finite_loss(value_loss, "value-regression")
                for parameter in other_parameters:
                    # No gradient: the optimizer skips the parameter (a zero gradient would still move it with Adam)
                    parameter.grad = None
                self.policy.optimizer.step()
        if self.n_critic_updates > 0:
            # The state is checked once, after the last step: a non-finite gradient (or one whose square overflows)
            # leaves a non-finite parameter or optimizer state; a non-finite parameter makes the next loss non-finite
            # (refused above) and a non-finite optimizer state stays non-finite (refused here)
            self._check_finite_state("value-regression")

    def critic_parameters(self) -> set[th.nn.Parameter]:
        """
        :return: The parameters that only the value function uses: its head, the value branch of the MLP extractor
            and, when the actor and the critic do not share it, the critic's features extractor
        """
        modules = [self.policy.value_net, self.policy.mlp_extractor.value_net]
        if not self.policy.share_features_extractor:
            modules.append(self.policy.vf_features_extractor)
        return {parameter for module in modules for parameter in module.parameters()}

    @staticmethod
    def _check_finite_loss(loss: th.Tensor, step: str) -> None:
        """
        Refuse a non-finite loss before its optimizer step.

        :param loss: The loss of the step
        :param step: What the step is, for the message
        :raises UpdateRefusedError: if the loss is not finite
        """
        if not th.isfinite(loss):
            raise UpdateRefusedError(f"the {step} loss is {loss.item()}")

    def _check_finite_gradient(self, loss: th.Tensor, step: str) -> None:
        """
        Refuse a non-finite loss or gradient, or one whose norm overflows, before an optimizer step.

        :param loss: The loss of the step
        :param step: What the step is, for the message
        :raises UpdateRefusedError: if the step would corrupt the parameters or the optimizer state
        """
        self._check_finite_loss(loss, step)
        gradients = [param.grad for param in self.policy.parameters() if param.grad is not None]
        if not _all_finite(gradients):
            raise UpdateRefusedError(f"the {step} gradient is not finite")
        # Finite gradients whose squares overflow freeze the parameters: clipping scales them by 0, Adam divides by inf
        if gradients and not th.isfinite(th.stack([th.linalg.vector_norm(gradient) for gradient in gradients]).norm()):
            raise UpdateRefusedError(f"the norm of the {step} gradient overflows")

    def _check_finite_state(self, step: str) -> None:
        """
        Refuse an optimizer step that left a non-finite parameter or optimizer state.

        :param step: What the step was, for the message
        :raises UpdateRefusedError: if a parameter or the optimizer state is not finite
        """
        if not _all_finite(self.policy.parameters()):
            raise UpdateRefusedError(f"the {step} step made a parameter non-finite")
        optimizer_state = self.policy.optimizer.state.values()
        tensors = [value for state in optimizer_state for value in state.values() if isinstance(value, th.Tensor)]
        if not _all_finite(tensors):
            raise UpdateRefusedError(f"the {step} step made the optimizer state non-finite")

    def _update_current_progress_remaining(self, num_timesteps: int, total_timesteps: int) -> None:
        """
        Progress remaining, from 1 to 0, as SB3 computes it but never below 0: the last batch of complete episodes
        may end past ``total_timesteps``, and a schedule is only defined on [0, 1].

        :param num_timesteps: Env steps taken so far
        :param total_timesteps: Env steps of the training
        """
        self._current_progress_remaining = max(0.0, 1.0 - float(num_timesteps) / float(total_timesteps))

    @classmethod
    def load(
        cls: type[SelfREINFORCE],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs,
    ) -> SelfREINFORCE:
        """
        Load a model saved by ``REINFORCE.save`` (SB3's ``load``: the file's pickled objects are run, so load only
        files you trust). A file saved by another algorithm (PPO, A2C, ...) is refused with ``ValueError``; keyword
        overrides are checked like constructor arguments.

        :param path: Path (or file object) of the saved model
        :param env: The environment to run the loaded model on, or ``None``
        :param device: Device on which the model should be loaded
        :param custom_objects: Objects to replace on load (as in SB3)
        :param print_system_info: Whether to print the system info of the saved model
        :param force_reset: Force a reset before the next ``learn()``
        :param kwargs: Attributes to change on load (e.g. ``learning_rate``, ``n_episodes``)
        :return: The loaded model
        """
        _check_saved_by_reinforce(path)
        # Unused by REINFORCE; files of release 0.1.0 hold a pickled buffer class that no longer exists
        unused: dict[str, Any] = {"rollout_buffer_class": None, "rollout_buffer_kwargs": {}}
        return super().load(
            path,
            env=env,
            device=device,
            custom_objects={**unused, **(custom_objects or {})},
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )

    def learn(
        self: SelfREINFORCE,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "REINFORCE",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfREINFORCE:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )


def _all_finite(tensors: Iterable[th.Tensor]) -> bool:
    """Whether every element of the floating-point ``tensors`` is finite: one check per device, not one per tensor."""
    by_device: dict[th.device, list[th.Tensor]] = {}
    for tensor in tensors:
        if tensor.is_floating_point():
            by_device.setdefault(tensor.device, []).append(tensor.detach().reshape(-1))
    return all(bool(th.isfinite(th.cat(flat)).all()) for flat in by_device.values())


def _cloned(state: Any) -> Any:
    """A copy of nested dicts, lists and tuples with every tensor cloned (a lighter ``copy.deepcopy`` of state dicts)."""
    if isinstance(state, th.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        copied = type(state)((key, _cloned(value)) for key, value in state.items())
        if hasattr(state, "_metadata"):
            # A module's state_dict carries the modules' versions, which load_state_dict reads
            copied._metadata = state._metadata  # type: ignore[attr-defined]
        return copied
    if isinstance(state, list | tuple):
        return type(state)(_cloned(value) for value in state)
    return state


def _check_hyperparameters(
    *,
    n_episodes: int,
    gamma: float,
    estimator: str,
    gamma_weighting: bool,
    baseline: str | None,
    normalize_advantage: bool,
    ent_coef: float,
    vf_coef: float,
    max_grad_norm: float | None,
    target_kl: float | None,
    n_critic_updates: int,
    critic_batch_size: int,
    bootstrap_truncated: bool,
    max_batch_steps: int,
    max_batch_bytes: int,
) -> None:
    """Raise ``ValueError`` / ``TypeError`` naming the allowed values for any bad hyperparameter."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"Unknown estimator {estimator!r}, allowed values: {ESTIMATORS}")
    if baseline not in BASELINES:
        raise ValueError(f"Unknown baseline {baseline!r}, allowed values: {BASELINES}")
    for name, value, minimum in (
        ("n_episodes", n_episodes, 1),
        ("max_batch_steps", max_batch_steps, 1),
        ("max_batch_bytes", max_batch_bytes, 1),
        ("n_critic_updates", n_critic_updates, 0),
        ("critic_batch_size", critic_batch_size, 1),
    ):
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
        if value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    if n_episodes > max_batch_steps:
        raise ValueError(
            f"n_episodes={n_episodes} cannot fit in max_batch_steps={max_batch_steps}: every episode has at least one step"
        )
    _check_real("gamma", gamma, "a float in [0, 1]")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be a float in [0, 1], got {gamma}")
    for name, flag in (
        ("gamma_weighting", gamma_weighting),
        ("normalize_advantage", normalize_advantage),
        ("bootstrap_truncated", bootstrap_truncated),
    ):
        # A YAML "False" or "no" is a string: truthy, it would turn the option on
        if not isinstance(flag, bool | np.bool_):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if not gamma_weighting and estimator != "reward_to_go":
        raise ValueError("gamma_weighting=False only applies to estimator='reward_to_go' (eq. 3 has no gamma^h factor)")
    if baseline == "mean" and n_episodes < 2:
        raise ValueError(
            f"baseline='mean' is a leave-one-out mean over the other episodes: needs n_episodes >= 2, got {n_episodes}"
        )
    for name, coefficient in (("ent_coef", ent_coef), ("vf_coef", vf_coef)):
        _check_real(name, coefficient, "a finite float >= 0")
        if not (math.isfinite(coefficient) and coefficient >= 0):
            raise ValueError(f"{name} must be a finite float >= 0, got {coefficient}")
    _check_positive_or_none("max_grad_norm", max_grad_norm, "no clipping")
    _check_positive_or_none("target_kl", target_kl, "no limit")
    _check_value_head_options(baseline, n_critic_updates, bootstrap_truncated)


def _check_value_head_options(baseline: str | None, n_critic_updates: int, bootstrap_truncated: bool) -> None:
    """Raise for options of the value head set without the value baseline."""
    if n_critic_updates > 0 and baseline != "value":
        raise ValueError(f"n_critic_updates={n_critic_updates} fits the value head: it needs baseline='value'")
    if bootstrap_truncated and baseline != "value":
        raise ValueError("bootstrap_truncated=True bootstraps with the value head: it needs baseline='value'")


def _check_inherited_arguments(
    *,
    policy: str | type[ActorCriticPolicy],
    policy_aliases: dict[str, type[BasePolicy]],
    device: th.device | str,
    init_setup_model: bool,
    learning_rate: float | Schedule,
    use_sde: bool,
    sde_sample_freq: int,
    stats_window_size: int,
    tensorboard_log: str | None,
    policy_kwargs: dict[str, Any] | None,
    verbose: int,
    seed: int | None,
) -> None:
    """Raise ``ValueError`` / ``TypeError`` naming the allowed values for a bad value of an argument SB3 takes as is."""
    _check_policy(policy, policy_aliases)
    _check_device(device)
    if not isinstance(init_setup_model, bool | np.bool_):
        raise TypeError(f"_init_setup_model must be True or False, got {init_setup_model!r}")
    if not callable(learning_rate):
        _check_real("learning_rate", learning_rate, "a finite float >= 0 or a schedule (progress remaining -> float)")
        if not (math.isfinite(learning_rate) and learning_rate >= 0):
            raise ValueError(f"learning_rate must be a finite float >= 0 or a schedule, got {learning_rate}")
    if not isinstance(use_sde, bool | np.bool_):
        raise TypeError(f"use_sde must be True or False, got {use_sde!r}")
    for name, value, allowed in (
        ("sde_sample_freq", sde_sample_freq, "an int (-1: only at the start of each batch)"),
        ("stats_window_size", stats_window_size, "an int >= 1"),
        ("verbose", verbose, "0, 1 or 2"),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{name} must be {allowed}, got {value!r}")
    if sde_sample_freq < -1:
        raise ValueError(f"sde_sample_freq must be -1 (only at the start of each batch) or an int >= 0, got {sde_sample_freq}")
    if stats_window_size < 1:
        raise ValueError(f"stats_window_size must be an int >= 1, got {stats_window_size}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
        raise TypeError(f"seed must be None or an int >= 0, got {seed!r}")
    if tensorboard_log is not None and not isinstance(tensorboard_log, str | pathlib.Path):
        raise TypeError(f"tensorboard_log must be None or a folder path, got {tensorboard_log!r}")
    if policy_kwargs is not None and not isinstance(policy_kwargs, dict):
        raise TypeError(f"policy_kwargs must be None or a dict of the policy's keyword arguments, got {policy_kwargs!r}")
    _check_squash_output(policy, policy_aliases, use_sde, policy_kwargs)


def _check_policy(policy: str | type[ActorCriticPolicy], policy_aliases: dict[str, type[BasePolicy]]) -> None:
    """Raise for a policy that is neither an alias of ``policy_aliases`` nor an ``ActorCriticPolicy`` subclass."""
    allowed = f"one of {sorted(policy_aliases)} or an ActorCriticPolicy subclass"
    if isinstance(policy, str):
        if policy not in policy_aliases:
            raise ValueError(f"policy must be {allowed}, got {policy!r}")
    elif not (isinstance(policy, type) and issubclass(policy, ActorCriticPolicy)):
        raise TypeError(f"policy must be {allowed}, got {policy!r}")


def _check_squash_output(
    policy: str | type[ActorCriticPolicy],
    policy_aliases: dict[str, type[BasePolicy]],
    use_sde: bool,
    policy_kwargs: dict[str, Any] | None,
) -> None:
    """
    Raise for ``squash_output=True`` without gSDE on SB3's policies: SB3 asserts it, and under ``python -O`` they would
    rescale an unbounded Gaussian past the bounds (``_env_actions``). ``SquashedMlpPolicy`` is that option.
    """
    policy_class = policy_aliases[policy] if isinstance(policy, str) else policy
    squashed_policy = issubclass(policy_class, SquashedActorCriticPolicy)
    if policy_kwargs is not None and policy_kwargs.get("squash_output") and not use_sde and not squashed_policy:
        raise ValueError(
            "policy_kwargs squash_output=True needs use_sde=True with SB3's policies (they squash gSDE's actions "
            "only); for a tanh-squashed Gaussian without gSDE, use policy='SquashedMlpPolicy'"
        )


def _check_device(device: th.device | str) -> None:
    """Raise for a device that torch does not know (``"auto"``: cuda where available, else cpu, as in SB3)."""
    allowed = "'auto', 'cpu', 'cuda', 'cuda:N', another torch device name, or a torch.device"
    if isinstance(device, th.device) or device == "auto":
        return
    if not isinstance(device, str):
        raise TypeError(f"device must be {allowed}, got {device!r}")
    try:
        th.device(device)
    except RuntimeError as error:
        raise ValueError(f"device must be {allowed}, got {device!r}") from error


def _check_saved_by_reinforce(path: str | pathlib.Path | io.BufferedIOBase) -> None:
    """Raise ``ValueError`` naming the algorithm that saved ``path`` if it is not REINFORCE (any release)."""
    if isinstance(path, io.BufferedIOBase):
        # A file object is read where it stands and left there for SB3's load
        position = path.tell()
        with zipfile.ZipFile(path) as archive:
            saved_attributes = set(json.loads(archive.read("data")))
        path.seek(position)
    else:
        with open_path(path, "r", verbose=0, suffix="zip") as file, zipfile.ZipFile(file) as archive:
            saved_attributes = set(json.loads(archive.read("data")))
    if REINFORCE_ATTRIBUTES <= saved_attributes:
        return
    if "clip_range" in saved_attributes:
        other = "PPO (it holds clip_range, n_epochs)"
    elif "buffer_size" in saved_attributes:
        other = "an off-policy algorithm (it holds a replay buffer_size)"
    else:
        other = "another algorithm, such as A2C"
    missing = ", ".join(sorted(REINFORCE_ATTRIBUTES - saved_attributes))
    raise ValueError(f"{path} was saved by {other}, not by REINFORCE (it lacks {missing}): load it with that algorithm")


def _check_real(name: str, value: Any, allowed: str) -> None:
    """Raise ``TypeError`` unless ``value`` is a real number (not a bool or a string)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be {allowed}, got {value!r}")


def _check_positive_or_none(name: str, value: float | None, meaning_of_none: str) -> None:
    """Raise ``TypeError`` / ``ValueError`` unless ``value`` is a number > 0 or None."""
    if value is None:
        return
    if not isinstance(value, float | int) or isinstance(value, bool):
        raise TypeError(f"{name} must be a float > 0 or None ({meaning_of_none}), got {value!r}")
    if not value > 0:
        raise ValueError(f"{name} must be a float > 0 or None ({meaning_of_none}), got {value}")


def _check_spaces(observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Raise ``TypeError`` naming the supported spaces for any other."""
    if not isinstance(action_space, SUPPORTED_ACTION_SPACES):
        allowed = ", ".join(space.__name__ for space in SUPPORTED_ACTION_SPACES)
        raise TypeError(f"REINFORCE does not support the action space {action_space}; supported: {allowed}")
    if not isinstance(observation_space, SUPPORTED_OBSERVATION_SPACES):
        allowed = ", ".join(space.__name__ for space in SUPPORTED_OBSERVATION_SPACES)
        raise TypeError(f"REINFORCE does not support the observation space {observation_space}; supported: {allowed}")
