import numpy as np
import torch as th

# Deterministic, and faster on 2 cores than torch's default thread pool for these small networks
th.set_num_threads(1)


def z_scores(samples: dict[str, np.ndarray], exact: dict[str, np.ndarray], tolerance: float = 1e-6) -> np.ndarray:
    """
    (sample mean - exact) / standard error for every component of the parameters named in ``exact``.
    A component whose samples are all equal (zero standard error) scores 0 if it is within ``tolerance`` of exact.

    :param samples: Samples of each parameter's estimate, shape ``(n_samples, *parameter.shape)``
    :param exact: The exact value of each parameter's estimand
    :return: One score per component
    """
    scores = []
    for name, exact_value in exact.items():
        values = samples[name]
        error = values.mean(axis=0) - np.asarray(exact_value)
        standard_error = values.std(axis=0, ddof=1) / np.sqrt(len(values))
        constant = standard_error == 0
        constant_score = np.where(np.abs(error) <= tolerance, 0.0, np.inf)
        score = np.where(constant, constant_score, error / np.where(constant, 1, standard_error))
        scores.append(score.ravel())
    return np.concatenate(scores)
