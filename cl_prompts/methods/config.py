"""The base of every method's config: the optimizer options, checks run on construction.

Each method's ``config.py`` defines a dataclass that inherits :class:`MethodConfig`,
documents its paper's defaults in its docstring and declares its fields with
:mod:`cl_prompts.methods.options` (help text and check per field). All configs are
JSON-serialisable with :func:`dataclasses.asdict`; sequences are normalised to tuples so
that a config read back from JSON compares equal to the original.

A config may name presets (``PRESETS``), e.g. ``"paper"``: the configuration its paper
published, kept while the defaults are chosen on validation data, so that both can be run
(``--set preset=paper``, ``build_model(..., preset="paper")``, ``L2PConfig.from_preset("paper")``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from cl_prompts.methods import options


@dataclass
class MethodConfig:
    """Optimizer settings shared by every method (methods without gradient training ignore them)."""

    lr: float = options.lr(1e-3)
    weight_decay: float = options.weight_decay()
    optimizer: str = options.optimizer()
    grad_clip: float | None = options.grad_clip()
    lr_schedule: str = options.lr_schedule()

    # preset name -> the options it sets, spelled out in full: a later change of a default
    # does not move a preset; options a preset leaves out keep their defaults.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    def __post_init__(self) -> None:
        options.run_checks(self)

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> MethodConfig:
        """The config of ``preset`` with ``overrides`` on top."""
        if preset not in cls.PRESETS:
            raise ValueError(f"{cls.__name__} has no preset {preset!r}; its presets: {sorted(cls.PRESETS)}")
        return cls(**{**cls.PRESETS[preset], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class KeyedPromptConfig(MethodConfig):
    """Options of the methods whose prompts are chosen by their keys (l2p, dualprompt, growing_pool)."""

    prompt_init: str = options.prompt_init()
    prompt_init_scale: float = options.prompt_init_scale()
    index: str = options.index()


def make_config(config_class: type[MethodConfig], method: str, overrides: Mapping[str, Any]) -> MethodConfig:
    """Build ``config_class(**overrides)``; unknown keys raise a TypeError listing the valid ones.

    The key ``preset`` starts from that preset instead of the defaults (:meth:`MethodConfig.from_preset`).
    """
    overrides = dict(overrides)
    preset = overrides.pop("preset", None)
    valid = [f.name for f in dataclasses.fields(config_class)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        presets = f"; presets (--set preset=NAME): {sorted(config_class.PRESETS)}" if config_class.PRESETS else ""
        raise TypeError(f"unknown config option(s) {unknown} for method {method!r}; valid options: {valid}{presets}")
    if preset is None:
        return config_class(**overrides)
    return config_class.from_preset(preset, **overrides)
