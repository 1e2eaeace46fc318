"""The learner's side of the comparison: REINFORCE's own updates turned back into gradient estimates."""

import numpy as np
import torch as th

from sb3_reinforce.reinforce.reinforce import REINFORCE


def sampled_policy_gradients(model: REINFORCE, n_samples: int) -> dict[str, np.ndarray]:
    """
    ``n_samples`` REINFORCE updates, each from the model's current parameters (restored after each update and at
    the end), turned back into the estimate ``g_hat = step / learning_rate``. Their mean estimates
    ``grad J`` (compare with ``sb3_reinforce.exact.exact_policy_gradient``); the value head's entries are its regression steps.

    :param model: A REINFORCE model with plain SGD (``policy_kwargs=dict(optimizer_class=th.optim.SGD)``, no
        momentum), a constant learning rate, ``max_grad_norm=None``, ``normalize_advantage=False``, ``ent_coef=0``
    :param n_samples: Number of updates, each on ``model.n_episodes`` new episodes
    :return: Arrays of shape ``(n_samples, *parameter.shape)`` keyed like ``model.policy.named_parameters()``
    """
    optimizer = model.policy.optimizer
    if type(optimizer) is not th.optim.SGD or any(group["momentum"] for group in optimizer.param_groups):
        raise ValueError(f"The model must use plain SGD (no momentum), so that an update is lr * g_hat; got {optimizer}")
    if model.max_grad_norm is not None or model.normalize_advantage or model.ent_coef != 0:
        raise ValueError("An update is lr * g_hat only with max_grad_norm=None, normalize_advantage=False, ent_coef=0")
    if not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an int >= 2, got {n_samples!r}")

    initial_state = {key: value.clone() for key, value in model.policy.state_dict().items()}
    samples: dict[str, list[np.ndarray]] = {name: [] for name, _ in model.policy.named_parameters()}
    for _ in range(n_samples):
        model.policy.load_state_dict(initial_state)
        model.learn(total_timesteps=1, reset_num_timesteps=False)
        learning_rate = optimizer.param_groups[0]["lr"]
        for name, parameter in model.policy.named_parameters():
            samples[name].append((parameter.detach() - initial_state[name]).cpu().numpy() / learning_rate)
    model.policy.load_state_dict(initial_state)
    return {name: np.stack(values) for name, values in samples.items()}
