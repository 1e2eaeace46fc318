# This file is here just to define MlpPolicy/CnnPolicy/MultiInputPolicy
# that work for REINFORCE: SB3's actor-critic policies (the value head serves baseline="value"),
# and SquashedMlpPolicy: the same with actions bounded by tanh, which SB3 only offers with gSDE
import math
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution, TanhBijector
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from torch.distributions import Normal
from torch.nn import functional as F


class SquashedActorCriticPolicy(ActorCriticPolicy):
    """
    SB3's actor-critic policy with bounded actions: a diagonal Gaussian ``u ~ N(mu(s), exp(log_std))`` (SB3's
    state-independent learned log-std), squashed to ``a = tanh(u)`` in [-1, 1] and rescaled to the Box bounds, so that
    no action is clipped. SB3's ``ActorCriticPolicy`` squashes only with gSDE (``squash_output=True`` asserts
    ``use_sde=True``); this class squashes with or without gSDE, with SB3's own distributions:
    ``SquashedDiagGaussianDistribution``, or gSDE's ``StateDependentNoiseDistribution`` with ``squash_output=True``.

    The episode buffer stores the squashed actions ``a``. ``log pi(a|s)`` is the Gaussian log-density of
    ``atanh(a)`` minus ``sum log(1 - a^2)``; that second term does not depend on the parameters, so the score, and
    with it the policy gradient, is that of the Gaussian at the ``u`` that was drawn. In float32, ``atanh(a)`` gives
    back ``u`` to within 2e-4 for ``|u| < 5``, 1e-2 for ``|u| < 7``; from ``|u| > 9.01`` ``tanh(u)`` rounds to 1 and
    SB3 clamps ``u`` to 8.32: keep the pre-tanh means of the policy well inside that range.

    The entropy of a squashed Gaussian has no closed form (SB3's distributions return ``None``): ``evaluate_actions``
    returns ``squashed_gaussian_entropy``, a one-sample estimate at the action taken whose value and gradient are
    unbiased, so that ``ent_coef`` works as with SB3's Gaussian policies.

    :param observation_space: Observation space
    :param action_space: Action space: a Box with finite bounds
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: The specification of the policy and value networks.
    :param activation_fn: Activation function
    :param ortho_init: Whether to use or not orthogonal initialization
    :param use_sde: Whether to use State Dependent Exploration or not (squashed either way)
    :param log_std_init: Initial value for the log standard deviation (of ``u``, before tanh)
    :param full_std: Whether to use (n_features x n_actions) parameters
        for the std instead of only (n_features,) when using gSDE
    :param use_expln: Use ``expln()`` function instead of ``exp()`` to ensure
        a positive standard deviation (cf paper). It allows to keep variance
        above zero and prevent it from growing too fast. In practice, ``exp()`` is usually enough.
    :param features_extractor_class: Features extractor to use.
    :param features_extractor_kwargs: Keyword arguments
        to pass to the features extractor.
    :param share_features_extractor: If True, the features extractor is shared between the policy and value networks.
    :param normalize_images: Whether to normalize images or not,
         dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use,
        ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments,
        excluding the learning rate, to pass to the optimizer
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ):
        if not isinstance(action_space, spaces.Box):
            raise TypeError(f"SquashedMlpPolicy bounds Box actions, got the action space {action_space}")
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ValueError(f"SquashedMlpPolicy rescales [-1, 1] to the bounds: they must be finite, got {action_space}")
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,
            activation_fn,
            ortho_init,
            use_sde,
            log_std_init,
            full_std,
            use_expln,
            # With gSDE, SB3's own squashing; without, SB3 would refuse it: _build sets the squashed distribution
            use_sde,
            features_extractor_class,
            features_extractor_kwargs,
            share_features_extractor,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
        )

    @property
    def squash_output(self) -> bool:
        """Always True: actions are drawn in [-1, 1] and rescaled to the bounds (``unscale_action``)."""
        return True

    def _build(self, lr_schedule: Schedule) -> None:
        if not self.use_sde:
            # A diagonal Gaussian followed by tanh: the same action_net and log_std as SB3's Gaussian
            self.action_dist = SquashedDiagGaussianDistribution(get_action_dim(self.action_space))
        super()._build(lr_schedule)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        # Not an argument: always squashed
        del data["squash_output"]
        return data

    def unscale_action(self, scaled_action: np.ndarray) -> np.ndarray:
        """
        Rescale the action from [-1, 1] to [low, high], as SB3 does, then clip: in float32 the rescaling of
        -1 or 1 can round an ulp past a bound.

        :param scaled_action: Action to un-scale
        """
        assert isinstance(self.action_space, spaces.Box)
        return np.clip(super().unscale_action(scaled_action), self.action_space.low, self.action_space.high)

    def evaluate_actions(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """
        Evaluate actions according to the current policy, given the observations.

        :param obs: Observation
        :param actions: Squashed actions, in [-1, 1]
        :return: estimated value, log likelihood of taking those actions and, in place of the entropy of the action
            distribution (no closed form), its estimate ``squashed_gaussian_entropy`` at these actions
        """
        values, log_prob, _ = super().evaluate_actions(obs, actions)
        # SB3's distributions are updated in place: action_dist holds the Gaussian that evaluate_actions just built
        gaussian = self.action_dist.distribution
        assert isinstance(gaussian, Normal)
        return values, log_prob, squashed_gaussian_entropy(gaussian, actions)


def squashed_gaussian_entropy(gaussian: Normal, actions: th.Tensor) -> th.Tensor:
    """
    Estimate of the entropy of ``a = tanh(u)``, ``u ~ gaussian`` (independent components), from one action drawn from it.

    The entropy of ``a`` is that of ``u`` plus the expected log-determinant of tanh's Jacobian:
    ``H(a) = H(u) + E[sum_i log(1 - tanh(u_i)^2)]``. ``H(u)`` has a closed form. The expectation is estimated at the
    drawn ``u``, written ``u = mean + std * eps`` with ``eps = (u - mean) / std`` held fixed (reparameterisation):
    both the value and the gradient with respect to ``mean`` and ``std`` are unbiased. Minus the log-probability of
    the action (SB3 PPO's stand-in when the entropy is ``None``) has an unbiased value too, but its gradient is a
    score, zero on average.

    :param gaussian: The distribution of ``u``, one row per observation
    :param actions: The drawn actions ``tanh(u)``, one row per observation
    :return: One estimate per row
    """
    gaussian_actions = TanhBijector.inverse(actions)
    noise = ((gaussian_actions - gaussian.mean) / gaussian.stddev).detach()
    reparameterised = gaussian.mean + gaussian.stddev * noise
    # log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)), without cancellation for large |u|
    log_det_jacobian = 2 * (math.log(2) - reparameterised - F.softplus(-2 * reparameterised))
    return gaussian.entropy().sum(dim=-1) + log_det_jacobian.sum(dim=-1)


MlpPolicy = ActorCriticPolicy
CnnPolicy = ActorCriticCnnPolicy
MultiInputPolicy = MultiInputActorCriticPolicy
SquashedMlpPolicy = SquashedActorCriticPolicy
