"""The features a method reads from the backbone, and the distinct training samples of an experience."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from cl_prompts.backbones.cache import tensor_keys, text_keys


def pick_feature(out, feature: str) -> Tensor:
    """``"pooled"``: pooling over the real tokens; ``"prompt"``: mean of the prompt positions (L2P)."""
    if feature == "prompt":
        if out.prompt_pooled is None:
            raise ValueError("feature='prompt' needs input prompts; use feature='pooled'")
        return out.prompt_pooled
    return out.pooled


def row_keys(inputs) -> list[bytes]:
    """A content hash per sample, so that repeated epochs are counted once.

    Text rows hash their non-padding tokens only: a batch is trimmed to its longest row,
    so the same sentence comes with other padding in another epoch's batch.
    """
    if isinstance(inputs, Tensor):
        return tensor_keys(inputs)
    ids = inputs["input_ids"]
    return text_keys(ids, inputs.get("attention_mask", torch.ones_like(ids)))


class FeatureCollector:
    """The distinct (feature, target) pairs seen during one experience (CPU, no grad).

    keep_inputs: also keep each sample's inputs (text rows without their padding, or
    images), so the experience's data can be passed through the model again once
    training has ended (:meth:`input_batches`).
    """

    def __init__(self, keep_inputs: bool = False) -> None:
        self.keep_inputs = keep_inputs
        self._rows: dict[bytes, tuple[Tensor, int, Any]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, inputs, features: Tensor, targets: Tensor) -> None:
        rows = _split_rows(inputs) if self.keep_inputs else [None] * len(targets)
        for key, f, t, row in zip(row_keys(inputs), features.detach().cpu(), targets.tolist(), rows, strict=True):
            self._rows.setdefault(key, (f, int(t), row))

    def tensors(self) -> tuple[Tensor, Tensor]:
        """(N, D) features and (N,) targets, in first-seen order."""
        if not self._rows:
            raise ValueError("no training sample was seen during this experience")
        feats = torch.stack([f for f, _, _ in self._rows.values()])
        return feats, torch.tensor([t for _, t, _ in self._rows.values()])

    def input_batches(self, batch_size: int, device=None) -> Iterator[tuple[Any, Tensor]]:
        """(inputs, targets (B,)) batches of the kept samples (text re-padded): shortest texts first,
        so that a batch carries little padding; images and rows of one length in first-seen order."""
        if not self.keep_inputs:
            raise RuntimeError("this collector does not keep inputs (keep_inputs=False)")
        values = sorted(self._rows.values(), key=lambda v: _row_length(v[2]))  # stable
        for start in range(0, len(values), batch_size):
            chunk = values[start : start + batch_size]
            targets = torch.tensor([t for _, t, _ in chunk], device=device)
            yield _join_rows([row for _, _, row in chunk], device), targets

    def clear(self) -> None:
        self._rows = {}


def _row_length(row) -> int:
    """Tokens of a kept text row (0 for an image: their order is kept)."""
    return 0 if isinstance(row, Tensor) else int(row["attention_mask"].shape[0])


def _split_rows(inputs) -> list:
    """A batch -> one entry per sample: a text row cut after its last real token, or an image."""
    if isinstance(inputs, Tensor):
        return list(inputs.detach().cpu())
    mask = inputs["attention_mask"].detach().cpu()
    lengths = (mask.cumsum(1) * mask).argmax(1) + 1  # index of the last real token + 1
    return [{k: v[i, : int(n)].detach().cpu() for k, v in inputs.items()} for i, n in enumerate(lengths)]


def _join_rows(rows: list, device=None):
    """Inverse of :func:`_split_rows`: images stacked; text rows right-padded with zeros (masked)."""
    if isinstance(rows[0], Tensor):
        return torch.stack(rows).to(device)
    width = max(int(r["attention_mask"].shape[0]) for r in rows)
    out = {}
    for k in rows[0]:
        padded = torch.zeros(len(rows), width, dtype=rows[0][k].dtype)
        for i, r in enumerate(rows):
            padded[i, : r[k].shape[0]] = r[k]
        out[k] = padded.to(device)
    return out


class FrozenPromptFeatures:
    """Features of (input, task) pairs under frozen tasks' prompts, kept for evaluation.

    An input's features under a frozen task's prompts never change (the backbone and those
    prompts are frozen), so the runner's evaluations after each experience, which read the
    same test inputs again and again, compute each (input, task) pair once. Rows are keyed by
    the input's non-padding content and the task; at most ``max_bytes`` of rows are kept (later
    pairs are computed every time). Derived state: never saved with the model.
    """

    def __init__(self, max_bytes: int) -> None:
        from cl_prompts.backbones.cache import QueryCache

        self.max_bytes = max_bytes
        self._rows = QueryCache()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._rows)

    def info(self) -> dict[str, int]:
        """{"size", "hits", "misses", "bytes"}."""
        return {**self._rows.info(), "bytes": self._bytes}

    def clear(self) -> None:
        self._rows.clear()
        self._bytes = 0

    def features(self, inputs: Any, tasks: Tensor, frozen: Tensor,
                 compute: Callable[[Any, Tensor], Tensor]) -> Tensor:
        """(B, F) rows of ``compute(inputs, tasks)``: kept rows where ``frozen`` (B,) bool is set,
        the others computed (on the sub-batch that needs them) and kept when frozen."""
        from cl_prompts.backbones.cache import tensor_keys, text_keys
        from cl_prompts.data.tensors import take_rows, trim_padding

        content = (tensor_keys(inputs) if isinstance(inputs, Tensor)
                   else text_keys(inputs["input_ids"], inputs["attention_mask"]))
        keys = [b"%d:" % t + k for t, k in zip(tasks.tolist(), content, strict=True)]
        is_frozen = frozen.tolist()
        rows = [self._rows.get(k) if f else None for k, f in zip(keys, is_frozen, strict=True)]
        missing = [i for i, r in enumerate(rows) if r is None]
        if missing:
            idx = torch.tensor(missing, device=tasks.device)
            part = take_rows(inputs, idx)
            fresh = compute(part if isinstance(part, Tensor) else trim_padding(part), tasks[idx])  # (m, F)
            for j, i in enumerate(missing):
                rows[i] = fresh[j]
                if is_frozen[i] and self._bytes < self.max_bytes:
                    self._rows.put(keys[i], fresh[j])
                    self._bytes += fresh[j].numel() * fresh[j].element_size()
        return torch.stack([r.to(tasks.device) for r in rows])
