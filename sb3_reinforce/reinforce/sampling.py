"""
Actions for collection: the distribution of SB3's ``policy.get_distribution(obs).get_actions()``, drawn without building
SB3's ``Distribution`` or torch's ``torch.distributions`` objects at every step.

The fast path computes the distribution's parameters as ``ActorCriticPolicy.get_distribution`` does (features
extractor, actor branch of the MLP extractor, ``action_net``) under ``torch.inference_mode()``: for SB3's default MLP
policy with the torch functions its modules' ``forward`` calls (``_direct_actor``; no ``nn.Module`` call, so only
where no hook is registered), otherwise by calling the modules. It then draws with the random numbers that
``get_actions()`` draws with (same primitive, same shape: the random number generator advances alike):

- diagonal Gaussian (Box, no gSDE): ``mean + eps * exp(log_std)``, ``eps`` from ``randn_like`` (``normal_()`` on an empty
  tensor, as ``Normal.rsample()``): the same actions, bit for bit
- Bernoulli (MultiBinary): ``torch.bernoulli(sigmoid(logits))``, as ``Bernoulli.sample()``: bit for bit
- Categorical (Discrete): ``Categorical.sample()`` calls ``torch.multinomial(probs, 1)``, which draws one sample as
  ``argmax(probs / q)`` with ``q ~ Exp(1)`` (ATen's path for one sample: an exponential race, index i wins with
  probability ``probs[i]``). The fast path runs that race with ``probs = softmax(logits)``; torch first normalises the
  logits by their logsumexp (the slowest op of the draw), which changes the last bits of ``probs`` only: a draw differs
  from SB3's only when two ratios ``probs[i] / q[i]`` tie within float32 rounding (about 1e-7 per draw)
- MultiCategorical (MultiDiscrete): the same race for each sub-space's logits, stacked

Unlike SB3's path, the fast path does not validate the parameters (torch's ``validate_args``): a NaN logit or mean,
from a NaN observation say, is sampled without error (only ``torch.bernoulli`` raises a RuntimeError). Such a batch
still never reaches the parameters: ``train()`` evaluates its actions with torch's validation (NaN logits, means or
actions raise ValueError) and refuses non-finite losses before any step; NaN actions often make NaN rewards first,
which ``collect_rollouts`` refuses (both tested).

Every other policy takes SB3's own path (``fast_sampling`` says which): gSDE and squashed outputs, custom policy
classes (even a subclass that only overrides ``forward``: what SB3 calls may have changed), custom distributions, and
a policy with one of those methods replaced on the instance.
"""

from collections.abc import Callable

import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    BernoulliDistribution,
    CategoricalDistribution,
    DiagGaussianDistribution,
    MultiCategoricalDistribution,
)
from stable_baselines3.common.policies import (
    ActorCriticCnnPolicy,
    ActorCriticPolicy,
    BaseModel,
    BasePolicy,
    MultiInputActorCriticPolicy,
)
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import FlattenExtractor, MlpExtractor
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import nn

# The policy classes whose get_distribution() the fast path reproduces (exact classes: a subclass may change it)
FAST_POLICY_CLASSES = (ActorCriticPolicy, ActorCriticCnnPolicy, MultiInputActorCriticPolicy)
# The distributions it samples (exact classes: SquashedDiagGaussianDistribution, for one, is a DiagGaussian subclass)
FAST_DISTRIBUTIONS = (CategoricalDistribution, DiagGaussianDistribution, MultiCategoricalDistribution, BernoulliDistribution)
# Methods on SB3's path; one set on the instance (a patched policy or distribution) sends it to SB3's path
SB3_PATH_METHODS = ("get_distribution", "_get_action_dist_from_latent", "extract_features")
SB3_DISTRIBUTION_METHODS = ("proba_distribution", "get_actions", "sample")


def fast_sampling(policy: BasePolicy) -> bool:
    """
    :param policy: The policy that collects
    :return: Whether ``action_sampler(policy)`` takes the fast path (otherwise SB3's ``get_distribution``)
    """
    distribution = getattr(policy, "action_dist", None)
    return (
        type(policy) in FAST_POLICY_CLASSES
        and type(distribution) in FAST_DISTRIBUTIONS
        and not policy.squash_output
        and not any(name in vars(policy) for name in SB3_PATH_METHODS)
        and not any(name in vars(distribution) for name in SB3_DISTRIBUTION_METHODS)
    )


def action_sampler(policy: BasePolicy) -> Callable[[PyTorchObs], th.Tensor]:
    """
    Choose, once per collection, how to sample the actions of ``policy``: on the fast path, how to compute the
    distribution's parameters (``_direct_actor`` or the modules) and which draw to make.

    :param policy: The policy that collects (its parameters are read at every call, its modules and hooks only here)
    :return: A function from an observation tensor (a batch) to the sampled actions, as
        ``policy.get_distribution(obs).get_actions()`` returns them (same values, dtype and shape), without gradient
    """
    if not fast_sampling(policy):
        return lambda obs: _sb3_actions(policy, obs)
    # fast_sampling checked the class
    actor_policy: ActorCriticPolicy = policy  # type: ignore[assignment]
    actor = _direct_actor(actor_policy) or (lambda obs: _actor_modules(actor_policy, obs))
    draw = _draw(actor_policy)

    def fast_actions(obs: PyTorchObs) -> th.Tensor:
        with th.inference_mode():
            return draw(actor(obs))

    return fast_actions


def _sb3_actions(policy: BasePolicy, obs: PyTorchObs) -> th.Tensor:
    """SB3's path: build the distribution, sample it."""
    with th.no_grad():
        # Every ActorCriticPolicy has get_distribution; BasePolicy does not declare it
        return policy.get_distribution(obs).get_actions()  # type: ignore[operator]


def _actor_modules(policy: ActorCriticPolicy, obs: PyTorchObs) -> th.Tensor:
    """The distribution's parameters as ``ActorCriticPolicy.get_distribution`` computes them, module by module."""
    # As get_distribution: super().extract_features, i.e. BaseModel's (preprocessing, then the actor's extractor)
    features = BaseModel.extract_features(policy, obs, policy.pi_features_extractor)
    return policy.action_net(policy.mlp_extractor.forward_actor(features))


def _direct_actor(policy: ActorCriticPolicy) -> Callable[[PyTorchObs], th.Tensor] | None:
    """
    The actor of SB3's default MLP policy (flat Box observations, ``FlattenExtractor``, ``MlpExtractor``, linear
    layers and Tanh/ReLU activations) as the torch functions its modules' ``forward`` calls: ``obs.float()`` (SB3's
    preprocessing of a Box), ``flatten``, ``F.linear``, the activation. The same operations on the same tensors, so
    the same distribution parameters bit for bit, without the overhead of ``nn.Module.__call__``.

    Module hooks are what ``__call__`` adds: a policy with a forward hook or pre-hook (on one of these modules or
    global), a ``forward`` replaced on a module instance, or any other module type gets ``None`` (the module path).
    Checked when the collection starts: a hook registered during a collection applies from the next one.

    :param policy: A policy of ``FAST_POLICY_CLASSES``
    :return: A function from an observation tensor to the distribution's parameters, or ``None``
    """
    extractor = policy.pi_features_extractor
    space = policy.observation_space
    if not (
        type(space) is spaces.Box
        and not (policy.normalize_images and is_image_space(space))
        and type(extractor) is FlattenExtractor
        and type(policy.mlp_extractor) is MlpExtractor
        and type(policy.mlp_extractor.policy_net) is nn.Sequential
    ):
        return None
    layers = [*policy.mlp_extractor.policy_net, policy.action_net]
    modules = [extractor, extractor.flatten, policy.mlp_extractor, policy.mlp_extractor.policy_net, *layers]
    functions = [_layer_function(layer) for layer in layers]
    if (
        (extractor.flatten.start_dim, extractor.flatten.end_dim) != (1, -1)
        or type(policy.action_net) is not nn.Linear
        or None in functions
        or _module_hooks_apply(modules)
    ):
        return None

    def actor(obs: PyTorchObs) -> th.Tensor:
        x = obs.float()  # type: ignore[union-attr]  # a Box space: a tensor, not a dict
        if x.dim() > 2:  # flatten(x, 1) returns a 2-D batch as it is
            x = th.flatten(x, 1)
        for function in functions:
            x = function(x)  # type: ignore[misc]  # None was ruled out above
        return x

    return actor


def _layer_function(module: nn.Module) -> Callable[[th.Tensor], th.Tensor] | None:
    """
    :return: The function ``module.forward`` applies (Linear with the module's current weights, Tanh, ReLU not in
        place), or ``None`` for other modules
    """
    if type(module) is nn.Linear:
        return lambda x: F.linear(x, module.weight, module.bias)
    if type(module) is nn.Tanh:
        return th.tanh
    if type(module) is nn.ReLU and not module.inplace:
        return F.relu
    return None


def _module_hooks_apply(modules: list[nn.Module]) -> bool:
    """:return: Whether calling ``modules`` would run more than their ``forward`` (hooks, or a replaced ``forward``)"""
    global_hooks = nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks
    return bool(global_hooks) or any(
        module._forward_hooks or module._forward_pre_hooks or "forward" in vars(module) for module in modules
    )


def _draw(policy: ActorCriticPolicy) -> Callable[[th.Tensor], th.Tensor]:
    """:return: The draw of ``policy.action_dist.get_actions()`` from the distribution's parameters"""
    distribution = policy.action_dist
    if isinstance(distribution, CategoricalDistribution):
        return _sample_categorical
    if isinstance(distribution, MultiCategoricalDistribution):
        action_dims = list(distribution.action_dims)
        return lambda logits: th.stack([_sample_categorical(part) for part in th.split(logits, action_dims, dim=1)], dim=1)
    if isinstance(distribution, DiagGaussianDistribution):
        # Normal(mean, std).rsample(): mean + eps * std, eps standard normal of the mean's shape
        return lambda mean: mean + th.randn_like(mean) * policy.log_std.exp()
    # BernoulliDistribution, the last of FAST_DISTRIBUTIONS: Bernoulli(logits=...).sample()
    return lambda logits: th.bernoulli(th.sigmoid(logits))


def _sample_categorical(logits: th.Tensor) -> th.Tensor:
    """
    One draw per row of ``Categorical(logits=logits)``, as ``torch.multinomial(probs, 1)`` draws it: the index of the
    largest ``probs[i] / q[i]`` over independent ``q[i] ~ Exp(1)``. ``q[i] / probs[i]`` is exponential with rate
    ``probs[i]``, so the smallest of them, the winner, is index i with probability ``probs[i] / sum(probs) = probs[i]``.

    :param logits: Unnormalised log-probabilities, one row per observation
    :return: The index drawn in each row (int64)
    """
    probs = th.softmax(logits, dim=-1)
    return th.argmax(probs / th.empty_like(probs).exponential_(), dim=-1)
