"""Argument checks shared by every layer (no imports beyond the standard library).

Each ``check_*`` raises ``TypeError`` for a value of the wrong type and ``ValueError`` for
one out of range, with a message that names the argument and the value it got.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def is_int(value: object) -> bool:
    """An int, and not a bool (``True`` is an ``int`` to Python, never a count to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An int or a float, and not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False,
                   allow_none: bool = False) -> None:
    """``value`` is a finite number > 0 (>= 0 with ``allow_zero``; an int with ``integer``)."""
    if value is None and allow_none:
        return
    if not (is_int(value) if integer else is_number(value)):
        want = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {want}, got {type(value).__name__} ({value!r})")
    bound = ">= 0" if allow_zero else "> 0"
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {bound}, got {value!r}")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """``value`` is one of ``choices`` (the message lists them)."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_bool(name: str, value: Any) -> None:
    """``value`` is ``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} ({value!r})")
