# This file is here just to define MlpPolicy/CnnPolicy/MultiInputPolicy
# that work for REINFORCE: SB3's actor-critic policies (the value head serves baseline="value")
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, MultiInputActorCriticPolicy

MlpPolicy = ActorCriticPolicy
CnnPolicy = ActorCriticCnnPolicy
MultiInputPolicy = MultiInputActorCriticPolicy
