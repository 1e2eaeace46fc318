"""rl-zoo3 hyperparameter files (``<algo>.yml``) shipped with sb3_reinforce, read by ``sb3_reinforce.zoo``."""
