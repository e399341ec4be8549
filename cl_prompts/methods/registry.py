"""The method registry: names -> classes, ``build_model``, ``load_model``, ``list_methods``.

Each method lives in ``cl_prompts/methods/<name>/`` and registers its class with
:func:`register` when its ``model`` module is imported. The registry imports them all
on first use so that ``import cl_prompts.methods`` stays cheap.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cl_prompts.methods.config import make_config

if TYPE_CHECKING:
    from cl_prompts.backbones import PromptedBackbone
    from cl_prompts.methods.base import ContinualMethod

# every method package, in the order list_methods() reports them
METHOD_MODULES = (
    "l2p",
    "dualprompt",
    "coda_prompt",
    "growing_pool",
    "prompt_tuning",
    "ncm",
    "ranpac",
    "slda",
    "linear_probe",
    "finetune",
    "joint",
)
_REGISTRY: dict[str, type[ContinualMethod]] = {}
_loaded = False


def register(cls: type[ContinualMethod]) -> type[ContinualMethod]:
    """Class decorator: register a method under its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty name to be registered")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for mod in METHOD_MODULES:
            importlib.import_module(f"cl_prompts.methods.{mod}.model")
        _loaded = True


def list_methods() -> list[str]:
    """Names of every registered method."""
    _load_all()
    order = {n: i for i, n in enumerate(METHOD_MODULES)}
    return sorted(_REGISTRY, key=lambda n: (order.get(n, len(order)), n))


def describe_method(name: str) -> str:
    """One line about method ``name``: the first paragraph of its config's docstring."""
    doc = get_method_class(name).config_class.__doc__ or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def describe_options(name: str) -> str:
    """Every config option of method ``name``: its default and its help, then the config's docstring."""
    import dataclasses
    import inspect
    import textwrap

    from cl_prompts.methods.options import option_help

    config_class = get_method_class(name).config_class
    fields = dataclasses.fields(config_class)
    defaults = config_class()
    lines = [f"{name} options (cl-prompts run --method {name} --set OPTION=VALUE):"]
    for f in fields:
        lines.append(f"  {f.name} = {getattr(defaults, f.name)!r}")
        lines += textwrap.wrap(option_help(f), width=88, initial_indent=" " * 6, subsequent_indent=" " * 6)
    for preset, values in config_class.PRESETS.items():
        lines.append(f"  preset = {preset!r}")
        lines += textwrap.wrap(f"sets {values}", width=88, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines) + "\n\n" + inspect.cleandoc(config_class.__doc__ or "") + "\n"


def get_method_class(name: str) -> type[ContinualMethod]:
    """The class registered as ``name``; a ValueError lists the valid names otherwise."""
    _load_all()
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; valid methods: {list_methods()}")
    return _REGISTRY[name]


def build_model(name: str, backbone: PromptedBackbone, num_classes: int, **config: Any) -> ContinualMethod:
    """Build method ``name`` on ``backbone`` for ``num_classes`` classes, with config overrides.

    Unknown names or config options raise an error listing the valid ones.
    """
    cls = get_method_class(name)
    cfg = make_config(cls.config_class, name, config)
    model = cls(backbone, num_classes, cfg)
    try:
        device = next(iter(backbone.parameters())).device
    except StopIteration:  # a backbone without parameters stays where it is
        return model
    return model.to(device)


def load_model(path: str | Path, backbone: PromptedBackbone) -> ContinualMethod:
    """Load a method saved with ``save_pretrained``; the method name is read from its JSON."""
    from cl_prompts.methods.saving import read_meta

    return get_method_class(read_meta(path)["method"]).from_pretrained(path, backbone)
