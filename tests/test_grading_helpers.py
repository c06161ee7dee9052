"""reference_disabled: the hidden tests' guard against calling the reference."""

import numpy as np
import pytest

from rlllm_course import returns
from rlllm_course.grading import ReferenceUsedError, reference_disabled


def test_a_direct_call_and_an_alias_both_raise_inside_the_block():
    alias = returns.discounted_returns  # as after `from ... import discounted_returns as alias`
    with reference_disabled(returns):
        with pytest.raises(ReferenceUsedError):
            returns.discounted_returns([1.0], [1], 0.9)
        with pytest.raises(ReferenceUsedError):
            alias([1.0], [1], 0.9)


def test_a_single_function_can_be_disabled_and_others_still_work():
    def own(rewards):  # a student's function that does not delegate
        return np.cumsum(rewards)

    with reference_disabled(returns.discounted_returns):
        assert own([1, 2]).tolist() == [1, 3]
        with pytest.raises(ReferenceUsedError):
            returns.discounted_returns([1.0], [1], 0.9)


def test_the_reference_is_restored_after_the_block_even_on_error():
    with pytest.raises(RuntimeError):
        with reference_disabled(returns):
            raise RuntimeError("a failing student function")
    # restored: the real computation runs again
    assert returns.discounted_returns([1.0, 1.0], [0, 1], 0.5).tolist() == [1.5, 1.0]


def test_a_closure_cannot_be_disabled_and_says_so():
    def make():
        k = 2
        return lambda x: k * x

    with pytest.raises(TypeError, match="closure"):
        with reference_disabled(make()):
            pass
