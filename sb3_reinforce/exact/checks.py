"""Checks of the planning module's scalar and array arguments: each bad value raises an error naming the argument."""

import math
from typing import Any

import numpy as np


def float_array(value: Any, name: str) -> np.ndarray:
    """
    :param value: An array-like of numbers
    :param name: How to call it in error messages
    :return: A float64 copy of ``value``
    """
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array of numbers, got {value!r}") from error


def check_int(name: str, value: Any, minimum: int) -> int:
    """
    :param name: The argument's name
    :param value: Its value: an int (not a bool) ``>= minimum``
    :param minimum: The smallest allowed value
    :return: ``value`` as an int
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def check_positive_float(name: str, value: Any) -> float:
    """
    :param name: The argument's name
    :param value: Its value: a finite real number ``> 0`` (not a bool)
    :return: ``value`` as a float
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a positive float, got {value!r}")
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a positive float, got {value}")
    return float(value)
