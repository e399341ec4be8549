"""Save and load a method: ``method.json`` (config, growth, names, calibration) and its trained tensors.

A saved folder may come from someone else (docs/security.md): ``method.json`` is read with
a size and nesting bound and checked field by field, and the sizes it declares are checked
against the tensors of ``method.safetensors`` (read from its header, before anything is
allocated); every tensor must have the shape and dtype the method gives it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from cl_prompts.checks import is_int
from cl_prompts.files import atomic_write, atomic_write_text
from cl_prompts.methods.tensor_checks import check_loaded_tensors
from cl_prompts.safe_io import check_regular, field, inside, read_json, require

if TYPE_CHECKING:
    from cl_prompts.backbones import PromptedBackbone
    from cl_prompts.methods.base import ContinualMethod

CONFIG_FILE = "method.json"
WEIGHTS_FILE = "method.safetensors"
FORMAT_VERSION = 1
MAX_CLASSES = 1_000_000
MAX_EXPERIENCES = 10_000
MAX_WEIGHTS_BYTES = 1 << 40
# A declared int above this (a pool size, a projection width) must be backed by a saved
# tensor with a dimension at least as large: a size alone in JSON allocates nothing.
SMALL_SIZE = 4096


def save_method(model: ContinualMethod, path: str | Path) -> None:
    """Write ``method.json`` and ``method.safetensors`` (trained tensors only) into ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = _unshared({k: v for k, v in model.state_dict().items()
                         if model.saves_backbone or not k.startswith("backbone.")})
    backbone = model.backbone
    meta = {
        "format_version": FORMAT_VERSION,
        "method": model.name,
        "num_classes": model.num_classes,
        "config": model.config.to_dict(),
        "backbone": backbone.identity(),
        # enough to load the backbone again (cl_prompts.inference.Predictor.from_pretrained)
        "backbone_config": {"name_or_path": backbone.config.name_or_path,
                            "pooling": getattr(backbone.config, "pooling", None)
                            or backbone.config.query_pooling,  # a causal LM's
                            "max_length": _text_max_length(backbone),
                            "precision": backbone.config.precision,  # what its calibration saw
                            **_causal_fields(backbone)},
        "experiences": model.experiences,
        "finished": model.finished,
        "extra_state": model.extra_state(),
        "class_names": model.class_names,
        "calibration": model.calibration,
    }
    atomic_write(path / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp))
    atomic_write_text(path / CONFIG_FILE, json.dumps(meta, indent=2))


def _unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors, each with a storage of its own: safetensors refuses shared
    storage. Only a tensor whose storage an earlier one uses is copied (a checkpoint's Gram
    matrices are most of its gigabyte, and they are fresh already)."""
    out, seen = {}, set()
    for k, v in state.items():
        v = v.detach().to("cpu")
        ptr = v.untyped_storage().data_ptr()
        if ptr in seen or not v.is_contiguous() or v.numel() != v.untyped_storage().nbytes() // v.element_size():
            v = v.clone(memory_format=torch.contiguous_format)
        seen.add(v.untyped_storage().data_ptr())
        out[k] = v
    return out


def _text_max_length(backbone: Any) -> int:
    """The ``BackboneConfig.max_length`` that loads this backbone again: a causal LM's config
    counts its template's ``TEMPLATE_ROOM`` tokens too, which loading adds back."""
    from cl_prompts.backbones.config import TEMPLATE_ROOM

    if getattr(backbone, "causal", False):
        return max(2, backbone.config.max_length - TEMPLATE_ROOM)
    return backbone.config.max_length


def _causal_fields(backbone: Any) -> dict[str, Any]:
    """A causal LM's template and query options that change its outputs (set ones only)."""
    config = backbone.config
    fields = {k: getattr(config, k) for k in ("instruction", "query_encoder") if getattr(config, k, None) is not None}
    if getattr(backbone, "causal", False):  # a causal LM's, as its identity resolved it
        fields["query_layer"] = "last" if backbone.query_layer is None else backbone.query_layer
    return fields


def load_method(cls: type[ContinualMethod], path: str | Path, backbone: PromptedBackbone) -> ContinualMethod:
    """Rebuild the method saved in ``path`` on ``backbone``; refuses another method or backbone.

    ``cls`` is the class asked for (``ContinualMethod`` itself: whichever the folder holds).
    """
    from cl_prompts.methods.config import make_config
    from cl_prompts.methods.registry import get_method_class, is_causal

    path = Path(path)
    meta = read_meta(path)
    source = str(path / CONFIG_FILE)
    if cls.name and meta["method"] != cls.name:
        raise ValueError(f"{path} holds method {meta['method']!r}, not {cls.name!r}")
    if not cls.name:
        cls = get_method_class(meta["method"], is_causal(backbone))
    ident = backbone.identity()
    if ident != meta["backbone"]:
        raise ValueError(f"backbone mismatch: saved with {meta['backbone']}, got {ident}")
    weights = path / WEIGHTS_FILE
    check_declared_sizes(meta, tensor_shapes(weights), source)
    try:
        config = make_config(cls.config_class, meta["method"], meta["config"])
        model = cls(backbone, meta["num_classes"], config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None
    device = next(iter(backbone.parameters())).device
    model.to(device)
    # replay the growth so every tensor has its saved shape, then load the values
    model._restoring = True
    try:
        for e, (classes, done) in enumerate(zip(meta["experiences"], meta["finished"], strict=True)):
            model.begin_experience(e, classes)
            if done:
                model.end_experience(e)
        model._restoring = False
        model.load_extra_state(meta["extra_state"])
        model.set_class_names(meta["class_names"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ValueError(f"{source}: the saved state does not fit method {meta['method']!r} "
                         f"({type(exc).__name__}: {exc})") from None
    model.calibration = meta["calibration"]
    try:
        tensors = load_file(str(weights), device=str(device))
    except SafetensorError as exc:
        raise ValueError(f"{weights} is not a valid safetensors file ({exc})") from None
    tensors = pack_whole_grams(tensors)
    check_tensors_fit(model, tensors, str(weights))
    check_loaded_tensors(tensors, str(weights), meta["num_classes"], len(meta["experiences"]))
    model.load_state_dict(tensors, strict=False)
    model._after_load()
    return model


def pack_whole_grams(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Files saved before the ridge statistics packed their Gram matrices hold them whole,
    ``<name>.gram`` (M, M): give them the packed form ``<name>.gram_upper`` the methods save now."""
    from cl_prompts.methods.closed_form import pack_upper

    for name in [k for k in tensors if k == "gram" or k.endswith(".gram")]:
        whole = tensors[name]
        if name + "_upper" not in tensors and whole.dim() == 2 and whole.shape[0] == whole.shape[1]:
            tensors[name + "_upper"] = pack_upper(tensors.pop(name))
    return tensors


def check_tensors_fit(model: ContinualMethod, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Every saved tensor has the name, shape and dtype the method gives it (an integer table stored
    as floats would skip the range checks; a wrong shape would fail inside torch)."""
    expected = {k: v for k, v in model.state_dict().items() if model.saves_backbone or not k.startswith("backbone.")}
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{source}: tensors do not match the method (missing {missing[:5]}, unexpected {unexpected[:5]})")
    for name, want in expected.items():
        have = tensors[name]
        if tuple(have.shape) != tuple(want.shape):
            raise ValueError(f"{source}: tensor {name!r} has shape {tuple(have.shape)}, the method needs "
                             f"{tuple(want.shape)}")
        if have.dtype != want.dtype:
            raise ValueError(f"{source}: tensor {name!r} has dtype {have.dtype}, the method stores {want.dtype}")


def tensor_shapes(file: Path) -> dict[str, tuple[int, ...]]:
    """Shapes of the tensors in a safetensors file, read from its header (nothing is loaded)."""
    check_regular(file, "method weights", MAX_WEIGHTS_BYTES)
    try:
        with safe_open(str(file), framework="pt") as fh:
            return {name: tuple(fh.get_slice(name).get_shape()) for name in fh.keys()}
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{file} is not a valid safetensors file ({exc})") from None


def check_declared_sizes(meta: dict[str, Any], shapes: dict[str, tuple[int, ...]], source: str) -> None:
    """The sizes ``method.json`` declares agree with the saved tensors, before anything is allocated."""
    classes = meta["num_classes"]
    if shapes.get("seen_mask") != (classes,):
        raise ValueError(f"{source}: num_classes is {classes}, but the saved seen_mask has shape "
                         f"{shapes.get('seen_mask')}")
    largest = max((d for shape in shapes.values() for d in shape), default=0)
    for part in ("config", "extra_state"):  # e.g. pool_size, projection_dim, joint's memory_size
        stack = [(part, meta[part])]
        while stack:
            name, value = stack.pop()
            if isinstance(value, dict):
                stack.extend((f"{name}.{k}", v) for k, v in value.items())
            elif isinstance(value, list):
                stack.extend((f"{name}[{i}]", v) for i, v in enumerate(value))
            elif is_int(value) and value > max(SMALL_SIZE, largest) and not name.endswith("seed"):  # a seed is no size
                raise ValueError(f"{source}: {name}={value} declares a size that no saved tensor has "
                                 f"(largest dimension {largest}); refusing to allocate it")


def read_meta(path: str | Path) -> dict[str, Any]:
    """The ``method.json`` of a saved method folder, checked field by field (types, sizes, ranges)."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"path must be a saved method folder with {CONFIG_FILE} and {WEIGHTS_FILE}: {path}")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        inside(path / name, path, name)  # a link to a file elsewhere is not this folder's
    meta = read_json(path / CONFIG_FILE, "method config")
    what = str(path / CONFIG_FILE)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported format_version {meta.get('format_version')!r}")
    field(meta, "method", str, what)
    classes = field(meta, "num_classes", int, what)
    if not 1 <= classes <= MAX_CLASSES:
        raise ValueError(f"{what}: num_classes must be in [1, {MAX_CLASSES}], got {classes}")
    field(meta, "config", dict, what)
    field(meta, "backbone", dict, what)
    field(meta, "extra_state", dict, what)
    experiences, finished = field(meta, "experiences", list, what), field(meta, "finished", list, what)
    if len(experiences) > MAX_EXPERIENCES or len(finished) != len(experiences):
        raise ValueError(f"{what}: experiences ({len(experiences)}) and finished ({len(finished)}) must have "
                         f"the same length, at most {MAX_EXPERIENCES}")
    for e, (classes_e, done) in enumerate(zip(experiences, finished, strict=True)):
        require(done, bool, f"{what}: finished[{e}]")
        require(classes_e, list, f"{what}: experiences[{e}]")
        if not classes_e or not all(is_int(c) and 0 <= c < classes for c in classes_e):
            raise ValueError(f"{what}: experiences[{e}] must hold class ids in [0, {classes}), got {classes_e[:10]}")
    names = meta.setdefault("class_names", None)
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise ValueError(f"{what}: class_names must be a list of strings")
    if meta.setdefault("calibration", None) is not None:
        require(meta["calibration"], dict, f"{what}: calibration")
    if meta.get("backbone_config") is not None:
        require(meta["backbone_config"], dict, f"{what}: backbone_config")
    return meta
