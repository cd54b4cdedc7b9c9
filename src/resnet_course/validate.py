"""Argument checks shared by the library (the one copy of them).

Every bad argument is a ``ValueError`` that names the argument, says what it must be and shows
what it got. ``ints_at_least`` states a function's integer arguments in one decorator line, so
the functions the book shows keep their bodies for the idea they teach.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def is_int(value: object) -> bool:
    """True for Python and NumPy integers, False for bools (True is an int, but not a count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """True for finite Python and NumPy numbers (ints included), False for bools, inf, nan."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return ok and math.isfinite(value)


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` when it is an integer >= ``minimum``; else a ValueError naming ``name``."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return value


def ints_at_least(**minimums: int) -> Callable[[F], F]:
    """Decorator: before each call, check the named arguments with ``check_int``.

    ``@ints_at_least(width=1, num_blocks=0)`` above ``def f(width, num_blocks)`` raises
    ``ValueError("width must be an integer >= 1; got 0")`` for ``f(0, 3)``. Defaults are checked
    too; on a class, decorate ``__init__``.
    """

    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        unknown = set(minimums) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{func.__qualname__} has no argument(s) {sorted(unknown)}")

        @functools.wraps(func)
        def checked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            for name, minimum in minimums.items():
                check_int(name, bound.arguments[name], minimum)
            return func(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate
