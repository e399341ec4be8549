"""The base of every method's config: the optimizer options, checks run on construction.

Each method's ``config.py`` defines a dataclass that inherits :class:`MethodConfig`,
documents its paper's defaults in its docstring and declares its fields with
:mod:`cl_prompts.methods.options` (help text and check per field). All configs are
JSON-serialisable with :func:`dataclasses.asdict`; sequences are normalised to tuples so
that a config read back from JSON compares equal to the original.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cl_prompts.methods import options


@dataclass
class MethodConfig:
    """Optimizer settings shared by every method (methods without gradient training ignore them)."""

    lr: float = options.lr(1e-3)
    weight_decay: float = options.weight_decay()
    optimizer: str = options.optimizer()

    def __post_init__(self) -> None:
        options.run_checks(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class KeyedPromptConfig(MethodConfig):
    """Options of the methods whose prompts are chosen by their keys (l2p, dualprompt, growing_pool)."""

    prompt_init: str = options.prompt_init()
    prompt_init_scale: float = options.prompt_init_scale()
    index: str = options.index()


def make_config(config_class: type[MethodConfig], method: str, overrides: Mapping[str, Any]) -> MethodConfig:
    """Build ``config_class(**overrides)``; unknown keys raise a TypeError listing the valid ones."""
    valid = [f.name for f in dataclasses.fields(config_class)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise TypeError(
            f"unknown config option(s) {unknown} for method {method!r}; valid options: {valid}"
        )
    return config_class(**overrides)
