"""Shared configuration pieces for every method: the optimizer fields and validators.

Each method's ``config.py`` defines a dataclass that inherits :class:`MethodConfig`
and documents its paper's defaults. All configs are JSON-serialisable with
:func:`dataclasses.asdict`; sequences are normalised to tuples so that a config
read back from JSON compares equal to the original.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cl_prompts.checks import is_int

OPTIMIZERS = ("adam", "adamw", "sgd")


def check_positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> None:
    """Raise TypeError/ValueError unless ``value`` is a positive (or >= 0) number."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        want = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {want}, got {type(value).__name__} ({value!r})")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """Raise ValueError listing the valid choices unless ``value`` is one of them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} ({value!r})")


def as_int_tuple(name: str, value: Any, *, allow_empty: bool = False) -> tuple[int, ...]:
    """Normalise a sequence of layer indices to a sorted-unique tuple of ints >= 0."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a sequence of ints, got {value!r}")
    out = tuple(value)
    for v in out:
        if not is_int(v) or v < 0:
            raise ValueError(f"{name} must hold ints >= 0, got {list(out)}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat a layer, got {list(out)}")
    if not out and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    return out


def check_layers(value: object) -> None:
    """``layers``: how many of the backbone's last layers make the frozen feature (>= 1)."""
    check_positive("layers", value, integer=True)


@dataclass
class MethodConfig:
    """Optimizer settings shared by every method.

    Args:
        lr: learning rate of the optimizer built for each experience.
        weight_decay: decoupled (``adamw``) or L2 (``adam``, ``sgd``) weight decay.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"`` (momentum 0.9).
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        check_positive("lr", self.lr)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def make_config(config_class: type[MethodConfig], method: str, overrides: Mapping[str, Any]) -> MethodConfig:
    """Build ``config_class(**overrides)``; unknown keys raise a TypeError listing the valid ones."""
    valid = [f.name for f in dataclasses.fields(config_class)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise TypeError(
            f"unknown config option(s) {unknown} for method {method!r}; valid options: {valid}"
        )
    return config_class(**overrides)
