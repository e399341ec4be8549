"""The method registry: names -> classes, ``build_model``, ``load_model``, ``list_methods``.

Each method lives in ``cl_prompts/methods/<name>/`` and registers its class with
:func:`register` when its ``model`` module is imported. The registry imports them all
on first use so that ``import cl_prompts.methods`` stays cheap.

Two tables: the methods on encoders, and those that answer by generation on a causal LM
(``cl_prompts/methods/generative/``, ``generative = True``). A name may be in both
(``prompt_tuning``): ``build_model`` and ``load_model`` pick by the backbone. On a causal
LM the encoder methods that read only its frozen features (``runs_on_causal_lm``:
``ncm``, ``ranpac``...) run too.
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
# the generative methods, one module each in cl_prompts/methods/generative/
GENERATIVE_MODULES = ("finetune", "growing_pool", "l2p", "progressive_prompts", "prompt_tuning", "zero_shot")
_REGISTRY: dict[str, type[ContinualMethod]] = {}
_GENERATIVE: dict[str, type[ContinualMethod]] = {}
_loaded = False


def is_causal(backbone: object) -> bool:
    """Whether ``backbone`` is a causal LM (the generative methods run on it)."""
    return bool(getattr(backbone, "causal", False))


def register(cls: type[ContinualMethod]) -> type[ContinualMethod]:
    """Class decorator: register a method under its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty name to be registered")
    table = _GENERATIVE if getattr(cls, "generative", False) else _REGISTRY
    if cls.name in table and table[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} is already registered")
    table[cls.name] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for mod in METHOD_MODULES:
            importlib.import_module(f"cl_prompts.methods.{mod}.model")
        for mod in GENERATIVE_MODULES:
            importlib.import_module(f"cl_prompts.methods.generative.{mod}")
        _loaded = True


def list_methods(causal: bool = False) -> list[str]:
    """Names of the registered methods: on encoders, or (``causal``) those that run on a causal LM."""
    _load_all()
    order = {n: i for i, n in enumerate(METHOD_MODULES)}
    if causal:
        names = set(_GENERATIVE) | {n for n, c in _REGISTRY.items() if c.runs_on_causal_lm}
    else:
        names = set(_REGISTRY)
    return sorted(names, key=lambda n: (n not in _GENERATIVE if causal else False, order.get(n, len(order)), n))


def describe_method(name: str, causal: bool = False) -> str:
    """One line about method ``name``: the first paragraph of its config's docstring."""
    doc = get_method_class(name, causal).config_class.__doc__ or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def describe_options(name: str, causal: bool = False) -> str:
    """Every config option of method ``name``: its default and its help, then the config's docstring."""
    import dataclasses
    import inspect
    import textwrap

    from cl_prompts.methods.options import option_help

    config_class = get_method_class(name, causal).config_class
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


def get_method_class(name: str, causal: bool = False) -> type[ContinualMethod]:
    """The class registered as ``name`` for an encoder, or (``causal``) for a causal LM.

    A ValueError lists the valid names otherwise.
    """
    _load_all()
    if causal:
        if isinstance(name, str) and name in _GENERATIVE:
            return _GENERATIVE[name]
        if isinstance(name, str) and name in _REGISTRY and _REGISTRY[name].runs_on_causal_lm:
            return _REGISTRY[name]
        raise ValueError(f"method {name!r} does not run on a causal LM; methods that do: {list_methods(causal=True)}")
    if isinstance(name, str) and name not in _REGISTRY and name in _GENERATIVE:
        raise ValueError(f"method {name!r} answers by generation: it needs a causal LM backbone "
                         "(e.g. --backbone smollm2)")
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; valid methods: {list_methods()}")
    return _REGISTRY[name]


def check_method_options(name: str, options: dict[str, Any], causal: bool | None) -> None:
    """Refuse an unknown method or option for the backbone's kind before anything is loaded.

    causal None: the kind is not known yet (a hub id): the options must fit the encoder
    variant or the causal LM one.
    """
    kinds = [causal] if causal is not None else [False, True]
    errors: list[Exception] = []
    for kind in kinds:
        try:
            make_config(get_method_class(name, kind).config_class, name, options)
            return
        except (TypeError, ValueError) as exc:
            errors.append(exc)
    raise errors[0]


def build_model(name: str, backbone: PromptedBackbone, num_classes: int, **config: Any) -> ContinualMethod:
    """Build method ``name`` on ``backbone`` for ``num_classes`` classes, with config overrides.

    Unknown names or config options raise an error listing the valid ones.
    """
    cls = get_method_class(name, is_causal(backbone))
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

    return get_method_class(read_meta(path)["method"], is_causal(backbone)).from_pretrained(path, backbone)
