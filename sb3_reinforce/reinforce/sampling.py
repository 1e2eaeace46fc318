"""
Actions for collection: the distribution of SB3's ``policy.get_distribution(obs).get_actions()``, drawn without building
SB3's ``Distribution`` or torch's ``torch.distributions`` objects at every step.

The fast path runs the same modules as ``ActorCriticPolicy.get_distribution`` (features extractor, actor branch of the
MLP extractor, ``action_net``) under ``torch.inference_mode()``, then draws with the random numbers that
``get_actions()`` draws with (same primitive, same shape: the random number generator advances alike):

- diagonal Gaussian (Box, no gSDE): ``mean + eps * exp(log_std)``, ``eps`` from ``normal_()``, as ``Normal.rsample()``:
  the same actions, bit for bit
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
from stable_baselines3.common.type_aliases import PyTorchObs

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
    Choose, once per collection, how to sample the actions of ``policy``.

    :param policy: The policy that collects (its modules and parameters are read at every call)
    :return: A function from an observation tensor (a batch) to the sampled actions, as
        ``policy.get_distribution(obs).get_actions()`` returns them (same values, dtype and shape), without gradient
    """
    if fast_sampling(policy):
        # fast_sampling checked the class
        return lambda obs: _fast_actions(policy, obs)  # type: ignore[arg-type]
    return lambda obs: _sb3_actions(policy, obs)


def _sb3_actions(policy: BasePolicy, obs: PyTorchObs) -> th.Tensor:
    """SB3's path: build the distribution, sample it."""
    with th.no_grad():
        # Every ActorCriticPolicy has get_distribution; BasePolicy does not declare it
        return policy.get_distribution(obs).get_actions()  # type: ignore[operator]


def _fast_actions(policy: ActorCriticPolicy, obs: PyTorchObs) -> th.Tensor:
    """The fast path: the modules of ``ActorCriticPolicy.get_distribution``, then the draw of ``get_actions()``."""
    with th.inference_mode():
        # As get_distribution: super().extract_features, i.e. BaseModel's (preprocessing, then the actor's extractor)
        features = BaseModel.extract_features(policy, obs, policy.pi_features_extractor)
        action_params = policy.action_net(policy.mlp_extractor.forward_actor(features))
        distribution = policy.action_dist
        if isinstance(distribution, CategoricalDistribution):
            return _sample_categorical(action_params)
        if isinstance(distribution, MultiCategoricalDistribution):
            splits = th.split(action_params, list(distribution.action_dims), dim=1)
            return th.stack([_sample_categorical(logits) for logits in splits], dim=1)
        if isinstance(distribution, DiagGaussianDistribution):
            # Normal(mean, std).rsample(): mean + eps * std, eps standard normal of the mean's shape
            return action_params + th.empty_like(action_params).normal_() * policy.log_std.exp()
        # BernoulliDistribution, the last of FAST_DISTRIBUTIONS: Bernoulli(logits=...).sample()
        return th.bernoulli(th.sigmoid(action_params))


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
