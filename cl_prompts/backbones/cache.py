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
from safetensors.torch import load_file, save_file

FORMAT = "cl_prompts.query_cache/1"
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
        """Write keys (N, 16) uint8 and features (N, D) float32 atomically (safetensors)."""
        path = Path(path)
        if not self._rows:
            raise ValueError(f"query cache is empty; nothing to save to {str(path)!r}")
        keys = torch.frombuffer(bytearray(b"".join(self._rows)), dtype=torch.uint8)
        keys = keys.reshape(len(self._rows), DIGEST_BYTES)
        feats = torch.stack([r.to("cpu", torch.float32) for r in self._rows.values()])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        meta = {"format": FORMAT, **{k: str(v) for k, v in metadata.items()}}
        save_file({"keys": keys, "features": feats.contiguous()}, str(tmp), metadata=meta)
        os.replace(tmp, path)

    def load(self, path: str | os.PathLike, expected: dict[str, str]) -> int:
        """Merge a saved cache; refuse it unless its metadata matches ``expected``. Returns rows read."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"query_cache_path {str(path)!r} does not exist")
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"query_cache_path {str(path)!r} is not a {FORMAT} file")
        for name, value in expected.items():
            if meta.get(name) != str(value):
                raise ValueError(
                    f"query_cache_path {str(path)!r} was written for {name}={meta.get(name)!r}, "
                    f"this backbone has {name}={value!r}"
                )
        tensors = load_file(str(path))
        keys, feats = tensors["keys"], tensors["features"]
        for key, row in zip(keys.numpy(), feats, strict=True):
            self._rows[key.tobytes()] = row
        return int(keys.shape[0])


def describe(identity: dict) -> str:
    """Canonical JSON of a backbone identity, stored in cache metadata."""
    return json.dumps(identity, sort_keys=True)
