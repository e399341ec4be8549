"""Saving and loading PromptPools: safetensors + JSON, atomic, no pickle.

Layout of a saved pool directory:
- ``pool.safetensors``: the tensors, plus the config and task sizes in its metadata.
  It is the source of truth and is replaced atomically (temp file, fsync, ``os.replace``),
  so a crash mid-save leaves the previous save whole.
- ``config.json``: a readable copy of the same config and task sizes, written after it.

``pool_to_tensors`` / ``pool_from_tensors`` expose the same format for callers (the
methods) that embed a pool in their own safetensors file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from cl_prompts.files import atomic_write
from cl_prompts.pool.config import STRUCTURAL_FIELDS, PoolConfig
from cl_prompts.pool.pool import PromptPool
from cl_prompts.safe_io import check_regular, parse_json

FORMAT = "cl_prompts.pool/1"
TENSORS_FILE = "pool.safetensors"
CONFIG_FILE = "config.json"


def pool_to_tensors(pool: PromptPool) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """CPU tensors and string metadata describing ``pool`` completely."""
    tensors = {
        "frozen_prompts": pool.frozen_prompts,
        "frozen_keys": pool.frozen_keys,
        "usage": pool.usage,
        "usage_at_task_start": pool.usage_at_task_start,
    }
    if pool.keys is not None:
        tensors["prompts"] = pool.prompts
        tensors["keys"] = pool.keys
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {
        "format": FORMAT,
        "config": json.dumps(pool.config.to_dict(), sort_keys=True),
        "task_sizes": json.dumps(pool.task_sizes),
        "current_trainable": json.dumps(pool.keys is not None),
    }
    return tensors, meta


def pool_from_tensors(
    tensors: dict[str, torch.Tensor],
    meta: dict[str, str],
    config: PoolConfig | None = None,
    source: str = "tensors",
) -> PromptPool:
    """Rebuild a pool; refuses a config or shape mismatch with a ValueError naming it."""
    if meta.get("format") != FORMAT:
        raise ValueError(f"{source}: not a saved PromptPool (format {meta.get('format')!r}, expected {FORMAT!r})")
    try:
        saved = PoolConfig.from_dict(parse_json(meta["config"], "pool config"))
        sizes = parse_json(meta["task_sizes"], "task_sizes", expect=list)
        trainable = parse_json(meta["current_trainable"], "current_trainable", expect=bool)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: corrupt pool metadata ({err})") from None
    if config is not None:
        if not isinstance(config, PoolConfig):
            raise TypeError(f"config must be a PoolConfig, got {type(config).__name__}")
        for name in STRUCTURAL_FIELDS:
            if getattr(config, name) != getattr(saved, name):
                raise ValueError(
                    f"{source}: saved pool has {name}={getattr(saved, name)}, "
                    f"config asks for {name}={getattr(config, name)}"
                )
    cfg = config or saved
    d, length = cfg.embed_dim, cfg.prompt_length
    if not isinstance(sizes, list) or not all(isinstance(s, int) and s > 0 for s in sizes):
        raise ValueError(f"{source}: task_sizes must be a list of positive ints, got {sizes!r}")
    if trainable and not sizes:
        raise ValueError(f"{source}: a trainable current task needs at least one task")
    n_train = sizes[-1] if trainable else 0
    n_frozen = sum(sizes) - n_train
    expected = {
        "frozen_prompts": (n_frozen, length, d),
        "frozen_keys": (n_frozen, cfg.query_dim),
        "usage": (sum(sizes),),
        "usage_at_task_start": (sum(sizes),),
    }
    if trainable:
        expected.update(prompts=(n_train, length, d), keys=(n_train, cfg.query_dim))
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ValueError(f"{source}: tensors missing {missing}, unexpected {extra}")
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise ValueError(
                f"{source}: tensor {name!r} has shape {tuple(tensors[name].shape)}, "
                f"expected {shape} from the config and task sizes"
            )
    for name, value in tensors.items():
        floating = not name.startswith("usage")
        if floating != value.is_floating_point() or value.is_complex():
            want = "a floating-point" if floating else "an integer"
            raise ValueError(f"{source}: tensor {name!r} has dtype {value.dtype}; it must be {want} tensor")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{source}: tensor {name!r} holds NaN or inf values; the file is corrupted")
        if name.startswith("usage") and (value.is_floating_point() or bool((value < 0).any())):
            raise ValueError(f"{source}: tensor {name!r} must hold non-negative integer counts")
    pool = PromptPool(cfg)
    pool.frozen_prompts = tensors["frozen_prompts"].clone()
    pool.frozen_keys = tensors["frozen_keys"].clone()
    pool.usage = tensors["usage"].long().clone()
    pool.usage_at_task_start = tensors["usage_at_task_start"].long().clone()
    if trainable:
        pool.prompts = nn.Parameter(tensors["prompts"].clone())
        pool.keys = nn.Parameter(tensors["keys"].clone())
    pool._task_sizes = list(sizes)
    pool.rebuild_index()
    return pool


def save_pool(pool: PromptPool, path: str | os.PathLike) -> None:
    """Write ``pool`` under directory ``path`` (created when missing), atomically."""
    from safetensors.torch import save_file

    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(f"path must be a directory, {str(directory)!r} is a file")
    directory.mkdir(parents=True, exist_ok=True)
    tensors, meta = pool_to_tensors(pool)
    atomic_write(directory / TENSORS_FILE, lambda tmp: save_file(tensors, tmp, metadata=meta))
    readable = {
        "format": FORMAT,
        "config": pool.config.to_dict(),
        "task_sizes": pool.task_sizes,
        "current_trainable": pool.keys is not None,
    }
    text = json.dumps(readable, indent=2, sort_keys=True) + "\n"
    atomic_write(directory / CONFIG_FILE, lambda tmp: Path(tmp).write_text(text))


def load_pool(
    path: str | os.PathLike, config: PoolConfig | None = None, map_location: str | torch.device = "cpu"
) -> PromptPool:
    """Load a pool saved by :func:`save_pool`; see :func:`pool_from_tensors` for checks."""
    from safetensors import SafetensorError, safe_open

    file = Path(path) / TENSORS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"no saved PromptPool at {str(path)!r} (missing {TENSORS_FILE})")
    check_regular(file, "saved pool", 1 << 40)
    try:
        with safe_open(str(file), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}
    except SafetensorError as exc:
        raise ValueError(f"{file} is not a valid safetensors file ({exc})") from None
    pool = pool_from_tensors(tensors, meta, config=config, source=str(path))
    return pool.to(map_location)
