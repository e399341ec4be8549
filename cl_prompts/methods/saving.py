"""Save and load a method: ``method.json`` (config, growth, names, calibration) and its trained tensors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors.torch import load_file, save_file

from cl_prompts.files import atomic_write, atomic_write_text
from cl_prompts.methods.tensor_checks import check_loaded_tensors

if TYPE_CHECKING:
    from cl_prompts.backbones import PromptedBackbone
    from cl_prompts.methods.base import ContinualMethod

CONFIG_FILE = "method.json"
WEIGHTS_FILE = "method.safetensors"
FORMAT_VERSION = 1


def save_method(model: ContinualMethod, path: str | Path) -> None:
    """Write ``method.json`` and ``method.safetensors`` (trained tensors only) into ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: v.detach().to("cpu").clone().contiguous()  # clone: safetensors refuses shared storage
        for k, v in model.state_dict().items()
        if model.saves_backbone or not k.startswith("backbone.")
    }
    backbone = model.backbone
    meta = {
        "format_version": FORMAT_VERSION,
        "method": model.name,
        "num_classes": model.num_classes,
        "config": model.config.to_dict(),
        "backbone": backbone.identity(),
        # enough to load the backbone again (cl_prompts.inference.Predictor.from_pretrained)
        "backbone_config": {"name_or_path": backbone.config.name_or_path,
                            "pooling": backbone.config.pooling,
                            "max_length": backbone.config.max_length,
                            "precision": backbone.config.precision},  # what its calibration saw
        "experiences": model.experiences,
        "finished": model.finished,
        "extra_state": model.extra_state(),
        "class_names": model.class_names,
        "calibration": model.calibration,
    }
    atomic_write(path / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp))
    atomic_write_text(path / CONFIG_FILE, json.dumps(meta, indent=2))


def load_method(cls: type[ContinualMethod], path: str | Path, backbone: PromptedBackbone) -> ContinualMethod:
    """Rebuild the method saved in ``path`` on ``backbone``; refuses another method or backbone.

    ``cls`` is the class asked for (``ContinualMethod`` itself: whichever the folder holds).
    """
    from cl_prompts.methods.registry import get_method_class

    meta = read_meta(path)
    if cls.name and meta["method"] != cls.name:
        raise ValueError(f"{path} holds method {meta['method']!r}, not {cls.name!r}")
    if not cls.name:
        cls = get_method_class(meta["method"])
    ident = backbone.identity()
    if ident != meta["backbone"]:
        raise ValueError(f"backbone mismatch: saved with {meta['backbone']}, got {ident}")
    config = cls.config_class(**meta["config"])
    model = cls(backbone, meta["num_classes"], config)
    device = next(iter(backbone.parameters())).device
    model.to(device)
    # replay the growth so every tensor has its saved shape, then load the values
    model._restoring = True
    for e, (classes, done) in enumerate(zip(meta["experiences"], meta["finished"], strict=True)):
        model.begin_experience(e, classes)
        if done:
            model.end_experience(e)
    model._restoring = False
    model.load_extra_state(meta["extra_state"])
    model.set_class_names(meta.get("class_names"))
    model.calibration = meta.get("calibration")
    tensors = load_file(str(Path(path) / WEIGHTS_FILE), device=str(device))
    check_loaded_tensors(tensors, str(Path(path) / WEIGHTS_FILE), meta["num_classes"], len(meta["experiences"]))
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if cls.saves_backbone or not k.startswith("backbone.")]
    if missing or unexpected:
        raise ValueError(f"{path}: tensors do not match the method (missing {missing}, unexpected {unexpected})")
    model._after_load()
    return model


def read_meta(path: str | Path) -> dict[str, Any]:
    """The ``method.json`` of a saved method folder (checked for its format version)."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"path must be a saved method folder with {CONFIG_FILE} and {WEIGHTS_FILE}: {path}")
    meta = json.loads((path / CONFIG_FILE).read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported format_version {meta.get('format_version')!r}")
    return meta
