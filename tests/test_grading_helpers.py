"""reference_disabled: the hidden tests' guard against calling the reference."""

import contextlib
import sys
import types

import numpy as np
import pytest

from rlllm_course import grading, returns
from rlllm_course.grading import GuardTamperedError, ReferenceUsedError, reference_disabled


def test_a_direct_call_and_an_alias_both_raise_inside_the_block():
    alias = returns.discounted_returns  # as after `from ... import discounted_returns as alias`
    with pytest.raises(ReferenceUsedError):
        with reference_disabled(returns):
            returns.discounted_returns([1.0], [1], 0.9)
    with pytest.raises(ReferenceUsedError):
        with reference_disabled(returns):
            alias([1.0], [1], 0.9)


def test_a_copy_of_the_function_object_is_caught():
    # types.FunctionType builds a new function around the same code: swapping __code__ on
    # the original would miss it, watching the code that runs does not
    f = returns.discounted_returns
    copy = types.FunctionType(f.__code__, f.__globals__, "mine", f.__defaults__, f.__closure__)
    with pytest.raises(ReferenceUsedError, match="discounted_returns"):
        with reference_disabled(returns):
            copy([1.0], [1], 0.9)


def test_a_caught_reference_error_still_fails_the_block():
    # CPython drops a profiling hook that raises: the guard must remember the hit
    def sneaky(rewards):
        try:
            return returns.discounted_returns(rewards, [1], 0.9)
        except ReferenceUsedError:
            return returns.discounted_returns(rewards, [1], 0.9)  # the hook is gone by now

    with pytest.raises(ReferenceUsedError):
        with reference_disabled(returns):
            sneaky([1.0])


def test_a_single_function_can_be_disabled_and_others_still_work():
    def own(rewards):  # a student's function that does not delegate
        return np.cumsum(rewards)

    with reference_disabled(returns.discounted_returns):
        assert own([1, 2]).tolist() == [1, 3]
        # another function of the same module is allowed when only one is disabled
        assert returns.td_residuals(np.ones(1), np.zeros(1), np.zeros(1), np.ones(1, bool), 0.9).tolist() == [1.0]
    with pytest.raises(ReferenceUsedError):
        with reference_disabled(returns.discounted_returns):
            returns.discounted_returns([1.0], [1], 0.9)


def test_the_reference_works_again_after_the_block_even_on_error():
    with pytest.raises(RuntimeError):
        with reference_disabled(returns):
            raise RuntimeError("a failing student function")
    assert returns.discounted_returns([1.0, 1.0], [0, 1], 0.5).tolist() == [1.5, 1.0]
    assert sys.getprofile() is None  # the hook is gone


def test_a_nested_helper_of_the_reference_is_blocked_too():
    # a closure or lambda inside a reference function is part of the reference
    def outer():
        k = 2
        return lambda x: k * x

    inner = outer()
    with pytest.raises(ReferenceUsedError):
        with reference_disabled(outer):
            inner(1)


def test_the_guard_module_cannot_be_replaced():
    # the attack seen in a real submission: swap the guard for a no-op, then delegate
    with pytest.raises(AttributeError, match="read-only"):
        grading.reference_disabled = lambda *a: contextlib.nullcontext()
    with pytest.raises(AttributeError, match="read-only"):
        del grading.ReferenceUsedError
    assert grading.reference_disabled is reference_disabled


def test_a_replaced_reference_function_is_reported(monkeypatch):
    # a wrapper put in the module's place (e.g. to record the expected values) is tampering
    monkeypatch.setattr(returns, "gae", lambda *a, **k: None)
    with pytest.raises(GuardTamperedError, match="returns.gae"):
        with reference_disabled(returns):
            pass


def test_a_swapped_code_object_is_reported(monkeypatch):
    monkeypatch.setattr(returns.discounted_returns, "__code__", (lambda *a: None).__code__)
    with pytest.raises(GuardTamperedError, match="discounted_returns"):
        with reference_disabled(returns):
            pass


def test_switching_the_hook_off_is_reported():
    with pytest.raises(GuardTamperedError, match="switched off"):
        with reference_disabled(returns):
            sys.setprofile(None)  # what an answer could do to get past the guard


def test_methods_of_the_modules_classes_stay_usable():
    # disabling a module stops its functions, not the config classes a scaffold uses
    from rlllm_course import tabular
    config = tabular.QLearningConfig()
    with reference_disabled(tabular):
        assert 0 <= config.epsilon_at(0) <= 1
    with pytest.raises(ReferenceUsedError):
        with reference_disabled(tabular):
            tabular.greedy_policy(np.zeros((2, 2)))
