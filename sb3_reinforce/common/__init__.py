from sb3_reinforce.common.vec_env import SubprocVecEnv, VecEnvWorkerError

__all__ = ["SubprocVecEnv", "VecEnvWorkerError"]
