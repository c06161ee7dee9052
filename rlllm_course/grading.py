"""Helpers for the notebooks' hidden tests.

The hidden tests compare a student's function with the reference on random
inputs. A student could pass them by calling the reference itself, so the
tests run the student's function inside ``reference_disabled``: while the
block runs, any call that enters the code of a disabled reference function
raises ``ReferenceUsedError``.

The guard watches *code*, not names: a profiling hook (``sys.setprofile``)
looks at every Python frame that starts and stops the ones whose code comes
from the disabled functions' source. So an alias (``from rlllm_course.returns
import gae as f``), a copy of the function object (``types.FunctionType``) or a
swapped ``__code__`` on the reference does not get past it. The set of code to
stop is compiled from the reference module's file on disk, not read from the
live objects an answer cell could have changed.

An answer cell runs in the same kernel as the tests, so it can still attack
the guard itself. What it can do to this package is caught here: this module
refuses attribute writes (``grading.reference_disabled = ...`` raises), the
guard checks on entry that the disabled module's functions are still the
package's own, and on exit that nobody switched its hook off. Deeper tricks
(``sys.modules``, ``exec``, ``sys.setprofile`` …) are what
``rlllm_course.tamper`` flags for the instructor when grading.
"""

import contextlib
import functools
import inspect
import os
import sys
import types


class ReferenceUsedError(AssertionError):
    """The graded function called the package's reference implementation."""


class GuardTamperedError(AssertionError):
    """Code under test changed the reference or switched the guard off."""


_MESSAGE = ("this exercise must be solved with your own code: it called the reference "
            "implementation {name} from rlllm_course")


def _code_keys(code):
    """(file, name, first line) of `code` and of every code object nested in it."""
    yield code.co_filename, code.co_name, code.co_firstlineno
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_keys(const)


@functools.lru_cache(maxsize=None)
def _compiled(path, mtime):
    """The source file `path` compiled afresh: (keys of its functions' code, names of its `def`s)."""
    with open(path, encoding="utf-8") as f:
        module_code = compile(f.read(), path, "exec")
    # module-level functions (and lambdas), not class bodies: a config's methods stay usable
    top = [c for c in module_code.co_consts
           if isinstance(c, types.CodeType) and c.co_flags & inspect.CO_NEWLOCALS]
    keys = frozenset(key for code in top for key in _code_keys(code))
    defs = tuple(c.co_name for c in top if c.co_name.isidentifier())  # `def`s, not lambdas
    return keys, defs


def _source_file(module):
    path = os.path.realpath(inspect.getsourcefile(module))
    return path, os.path.getmtime(path)


def _check_untouched(module, path, defs):
    """Each function the module's file defines must still be the module's attribute, from that file."""
    for name in defs:
        f = inspect.unwrap(getattr(module, name, None) or (lambda: None))
        code = getattr(f, "__code__", None)
        if code is None or os.path.realpath(code.co_filename) != path or code.co_name != name:
            raise GuardTamperedError(f"{module.__name__}.{name} was replaced or removed")


def _blocked_keys(targets):
    keys = set()
    for target in targets:
        if isinstance(target, types.ModuleType):
            path, mtime = _source_file(target)
            file_keys, defs = _compiled(path, mtime)
            _check_untouched(target, path, defs)
            keys |= file_keys
        else:
            code = inspect.unwrap(target).__code__
            keys |= {(os.path.realpath(file), name, line) for file, name, line in _code_keys(code)}
    own = os.path.realpath(__file__)  # the guard's own code must keep running
    return frozenset(key for key in keys if key[0] != own)


@contextlib.contextmanager
def reference_disabled(*targets):
    """Make every function in `targets` (functions or whole modules) raise when called.

    Usage in a hidden test::

        expected = ref.discounted_returns(rewards, dones, gamma)
        with reference_disabled(ref):
            got = discounted_returns(rewards, dones, gamma)

    Raises ReferenceUsedError inside the block where disabled code starts to run,
    and GuardTamperedError if the reference was replaced before the block or the
    hook was removed during it.
    """
    blocked = _blocked_keys(targets)
    realpath = functools.lru_cache(maxsize=None)(os.path.realpath)
    hits = []  # CPython drops a hook that raises, so a caught error must still fail the block

    def hook(frame, event, arg):
        if event == "call":
            code = frame.f_code
            if (realpath(code.co_filename), code.co_name, code.co_firstlineno) in blocked:
                hits.append(code.co_name)
                raise ReferenceUsedError(_MESSAGE.format(name=code.co_name))

    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        yield
    finally:
        removed = sys.getprofile() is not hook
        sys.setprofile(previous)
    if hits:
        raise ReferenceUsedError(_MESSAGE.format(name=hits[0]))
    if removed:
        raise GuardTamperedError("the code under test switched off the reference guard")


class _ReadOnly(types.ModuleType):
    """This module's attributes cannot be replaced or deleted (see the module docstring)."""

    def __setattr__(self, name, value):
        raise AttributeError(f"{self.__name__} is read-only: its guard cannot be replaced")

    def __delattr__(self, name):
        raise AttributeError(f"{self.__name__} is read-only: its guard cannot be removed")


sys.modules[__name__].__class__ = _ReadOnly
