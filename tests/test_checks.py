"""Input checks name the argument and the expected range or shape."""

import numpy as np
import pytest

from rlllm_course.checks import check_ndim, check_positive, check_same_shape, check_unit_interval


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), [0.5], np.array([0.1, 0.2])])
def test_unit_interval_rejects_out_of_range_and_non_scalars(value):
    with pytest.raises(ValueError, match=r"gamma must be a number in \[0, 1\]"):
        check_unit_interval("gamma", value)


@pytest.mark.parametrize("value", [0.0, 1.0, np.float32(0.3), np.array(0.99)])
def test_unit_interval_accepts_the_ends_and_0d_values(value):
    check_unit_interval("gamma", value)  # the ends are valid discounts (myopic, undiscounted)


def test_positive_rejects_zero():
    with pytest.raises(ValueError, match="alpha must be a positive number"):
        check_positive("alpha", 0.0)


def test_shape_errors_name_both_arguments_and_shapes():
    with pytest.raises(ValueError, match=r"rewards must have shape \(T,\), got shape \(2, 3\)"):
        check_ndim("rewards", np.zeros((2, 3)), 1, "(T,)")
    with pytest.raises(ValueError, match=r"dones must have the same shape as rewards: got \(2,\) and \(3,\)"):
        check_same_shape("dones", np.zeros(2), "rewards", np.zeros(3))
