from sb3_reinforce.reinforce.gradient_estimates import sampled_policy_gradients
from sb3_reinforce.reinforce.policies import (
    CnnPolicy,
    MlpPolicy,
    MultiInputPolicy,
    SquashedActorCriticPolicy,
    SquashedMlpPolicy,
)
from sb3_reinforce.reinforce.reinforce import REINFORCE

__all__ = [
    "REINFORCE",
    "CnnPolicy",
    "MlpPolicy",
    "MultiInputPolicy",
    "SquashedActorCriticPolicy",
    "SquashedMlpPolicy",
    "sampled_policy_gradients",
]
