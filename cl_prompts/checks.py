"""The type tests that argument checks share (no imports: every layer may use them)."""

from __future__ import annotations


def is_int(value: object) -> bool:
    """An int, and not a bool (``True`` is an ``int`` to Python, never a count to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An int or a float, and not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)
