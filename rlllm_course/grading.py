"""Helpers for the notebooks' hidden tests.

The hidden tests compare a student's function with the reference on random
inputs. A student could pass them by calling the reference itself, so the
tests run the student's function inside ``reference_disabled``: every
reference function it names raises ``ReferenceUsedError`` while the block
runs. The function objects themselves are disarmed (their ``__code__`` is
swapped), so aliases such as ``from rlllm_course.returns import
discounted_returns as f`` are caught too.
"""

import contextlib
import inspect
import types


class ReferenceUsedError(AssertionError):
    """The graded function called the package's reference implementation."""


def _disarmed(*args, **kwargs):
    # This code runs with the disarmed function's globals, hence the local import.
    from rlllm_course.grading import ReferenceUsedError
    raise ReferenceUsedError(
        "this exercise must be solved with your own code: it called the "
        "reference implementation from rlllm_course"
    )


def _functions(targets):
    """Expand modules into the functions they define; unwrap decorators."""
    for target in targets:
        if isinstance(target, types.ModuleType):
            members = [f for _, f in inspect.getmembers(target, inspect.isfunction)
                       if f.__module__ == target.__name__]
        else:
            members = [target]
        for f in members:
            yield inspect.unwrap(f)


@contextlib.contextmanager
def reference_disabled(*targets):
    """Make every function in `targets` (functions or whole modules) raise.

    Usage in a hidden test::

        expected = ref.discounted_returns(rewards, dones, gamma)
        with reference_disabled(ref):
            got = discounted_returns(rewards, dones, gamma)
    """
    saved = {}
    for f in _functions(targets):
        if f.__code__.co_freevars:
            raise TypeError(f"cannot disable {f.__qualname__}: it is a closure")
        saved[f] = f.__code__
        f.__code__ = _disarmed.__code__
    try:
        yield
    finally:
        for f, code in saved.items():
            f.__code__ = code
