"""In-memory (optionally on-disk) cache of frozen query features.

Keys are 16-byte digests either of a sample's content (its non-padding token ids,
or its pixel values) or of an explicit sample index supplied by the caller. Both
are stable across epochs, so a multi-epoch run computes each query once.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cl_prompts.files import atomic_write
from cl_prompts.safe_io import check_regular

FORMAT = "cl_prompts.query_cache/1"
# Metadata that caches written before it existed hold implicitly.
IMPLIED_METADATA = {"precision": "fp32"}
DIGEST_BYTES = 16


def _digest(tag: bytes, payload: bytes) -> bytes:
    return hashlib.blake2b(tag + payload, digest_size=DIGEST_BYTES).digest()


def index_keys(indices: torch.Tensor) -> list[bytes]:
    """One key per explicit sample index; indices: (B,) integer tensor."""
    return [_digest(b"idx:", int(i).to_bytes(8, "little", signed=True)) for i in indices.tolist()]


def text_keys(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[bytes]:
    """One key per row from its non-padding token ids; (B, T) tensors, any padding length."""
    ids = input_ids.detach().to("cpu", torch.int64)
    mask = attention_mask.detach().to("cpu").bool()
    return [_digest(b"ids:", ids[r][mask[r]].numpy().tobytes()) for r in range(ids.shape[0])]


def tensor_keys(pixels: torch.Tensor) -> list[bytes]:
    """One key per row from its raw values; pixels: (B, ...) float tensor."""
    flat = pixels.detach().to("cpu").contiguous().reshape(pixels.shape[0], -1)
    return [_digest(b"px:", flat[r].numpy().tobytes()) for r in range(flat.shape[0])]


def layer_keys(keys: list[bytes], layers: int) -> list[bytes]:
    """Keys of the same samples' ``layers``-layer features (rows of another width)."""
    tag = b"layers:%d:" % layers
    return [_digest(tag, k) for k in keys]


class QueryCache:
    """Maps sample keys to (D,) feature rows; counts hits and misses."""

    def __init__(self) -> None:
        self._rows: dict[bytes, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        self._rows.clear()
        self.hits = self.misses = 0

    def get(self, key: bytes) -> torch.Tensor | None:
        row = self._rows.get(key)
        if row is None:
            self.misses += 1
        else:
            self.hits += 1
        return row

    def put(self, key: bytes, row: torch.Tensor) -> None:
        # clone: a row view would keep the whole batch tensor alive
        self._rows[key] = row.detach().clone()

    def info(self) -> dict[str, int]:
        return {"size": len(self), "hits": self.hits, "misses": self.misses}

    def save(self, path: str | os.PathLike, metadata: dict[str, str]) -> None:
        """Write keys (N, 16) uint8 and features (N, D) float32 atomically (safetensors).

        Rows of another width (multi-layer features) go to ``keys.<width>`` / ``features.<width>``.
        """
        path = Path(path)
        if not self._rows:
            raise ValueError(f"query cache is empty; nothing to save to {str(path)!r}")
        by_width: dict[int, list[bytes]] = {}
        for key, row in self._rows.items():
            by_width.setdefault(row.shape[-1], []).append(key)
        tensors = {}
        for i, (width, keys) in enumerate(sorted(by_width.items())):
            suffix = "" if i == 0 else f".{width}"
            flat = torch.frombuffer(bytearray(b"".join(keys)), dtype=torch.uint8)
            tensors["keys" + suffix] = flat.reshape(len(keys), DIGEST_BYTES)
            tensors["features" + suffix] = torch.stack([self._rows[k].to("cpu", torch.float32) for k in keys])
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, **{k: str(v) for k, v in metadata.items()}}
        tensors = {k: v.contiguous() for k, v in tensors.items()}
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))

    def load(self, path: str | os.PathLike, expected: dict[str, str]) -> int:
        """Merge a saved cache; refuse it unless its metadata matches ``expected``. Returns rows read."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"query_cache_path {str(path)!r} does not exist")
        from safetensors import safe_open

        check_regular(path, "query_cache_path", 1 << 40)
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        except SafetensorError as exc:
            raise ValueError(f"query_cache_path {str(path)!r} is not a valid safetensors file ({exc})") from None
        if meta.get("format") != FORMAT:
            raise ValueError(f"query_cache_path {str(path)!r} is not a {FORMAT} file")
        for name, value in expected.items():
            found = meta.get(name, IMPLIED_METADATA.get(name))
            if found != str(value):
                raise ValueError(
                    f"query_cache_path {str(path)!r} was written for {name}={found!r}, "
                    f"this backbone has {name}={value!r}"
                )
        try:
            tensors = load_file(str(path))
        except SafetensorError as exc:
            raise ValueError(f"query_cache_path {str(path)!r} is not a valid safetensors file ({exc})") from None
        pairs = _check_rows(tensors, _hidden_size(expected), str(path))
        read = 0
        for keys, feats in pairs:
            for key, row in zip(keys.numpy(), feats, strict=True):
                self._rows[key.tobytes()] = row
            read += int(keys.shape[0])
        return read


def _hidden_size(expected: dict[str, str]) -> int | None:
    try:
        return int(json.loads(expected["identity"])["hidden_size"])
    except (KeyError, TypeError, ValueError):
        return None


def _check_rows(tensors: dict[str, torch.Tensor], hidden: int | None,
                source: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, features) pairs of a saved cache, checked like any saved tensor: keys (N, 16) uint8,
    features (N, W) finite floats, W a multiple of the backbone's width (named in the suffix but the first)."""
    names = sorted(n for n in tensors if n.startswith("keys"))
    if sorted(tensors) != sorted([*names, *("features" + n[len("keys"):] for n in names)]):
        raise ValueError(f"query_cache_path {source!r} holds tensors {sorted(tensors)[:6]}, not pairs of keys "
                         "and features")
    pairs = []
    for name in names:
        suffix = name[len("keys"):]
        keys, feats = tensors[name], tensors["features" + suffix]
        width = int(suffix[1:]) if suffix[1:].isdigit() else None  # the first width has no suffix
        if (keys.dtype != torch.uint8 or keys.dim() != 2 or keys.shape[1] != DIGEST_BYTES
                or not feats.is_floating_point() or feats.dim() != 2 or feats.shape[0] != keys.shape[0]
                or (width is not None and feats.shape[1] != width)
                or (hidden is not None and feats.shape[1] % hidden)):
            raise ValueError(f"query_cache_path {source!r}: {name} {tuple(keys.shape)} {keys.dtype} and its "
                             f"features {tuple(feats.shape)} {feats.dtype} are not (N, {DIGEST_BYTES}) uint8 keys "
                             f"with (N, {width or 'a multiple of the width'}) float rows")
        if not bool(torch.isfinite(feats).all()):
            raise ValueError(f"query_cache_path {source!r}: features{suffix} holds NaN or inf rows; the file is corrupted")
        pairs.append((keys, feats))
    return pairs


def describe(identity: dict) -> str:
    """Canonical JSON of a backbone identity, stored in cache metadata."""
    return json.dumps(identity, sort_keys=True)
