"""Input checks used at the public boundary of the reference functions.

Each check names the argument and what was expected, so that a student who
passes a wrong shape or an out-of-range value reads the fix in the error.
"""

import numpy as np


def check_unit_interval(name, value):
    """Raise ValueError unless 0 <= value <= 1 (gamma, epsilon, lambda, ...)."""
    if np.ndim(value) != 0 or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def check_positive(name, value):
    """Raise ValueError unless value > 0 (learning rates, counts, ...)."""
    if np.ndim(value) != 0 or not float(value) > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def check_ndim(name, array, ndim, shape_doc):
    """Raise ValueError unless `array` has `ndim` dimensions; `shape_doc` is e.g. '(T,)'."""
    if np.ndim(array) != ndim:
        raise ValueError(f"{name} must have shape {shape_doc}, got shape {tuple(np.shape(array))}")


def check_same_shape(name, array, other_name, other):
    """Raise ValueError unless `array` and `other` have the same shape."""
    if np.shape(array) != np.shape(other):
        raise ValueError(
            f"{name} must have the same shape as {other_name}: "
            f"got {tuple(np.shape(array))} and {tuple(np.shape(other))}"
        )
