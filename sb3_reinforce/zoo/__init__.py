"""
rl-zoo3 integration of REINFORCE.

- Command line: ``python -m sb3_reinforce.zoo {train,enjoy,record_video,plot_train,plot_from_file,all_plots} ...``
- Python: ``get_hyperparameters(algo, env_id)`` gives the constructor keyword arguments of the zoo config;
  ``register_reinforce()`` makes ``"reinforce"`` usable through rl-zoo3's own API.
"""

from sb3_reinforce.zoo.hyperparams import default_config_file, get_hyperparameters, get_n_timesteps, make_eval_env
from sb3_reinforce.zoo.registration import register_reinforce

__all__ = ["default_config_file", "get_hyperparameters", "get_n_timesteps", "make_eval_env", "register_reinforce"]
