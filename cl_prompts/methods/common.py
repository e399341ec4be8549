"""Small pieces shared by the prompt methods: feature choice, prompt initialisation, validation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

FEATURES = ("pooled", "prompt")
PROMPT_INITS = ("uniform", "normal")


def pick_feature(out, feature: str) -> Tensor:
    """``"pooled"``: pooling over the real tokens; ``"prompt"``: mean of the prompt positions (L2P)."""
    if feature == "prompt":
        if out.prompt_pooled is None:
            raise ValueError("feature='prompt' needs input prompts; use feature='pooled'")
        return out.prompt_pooled
    return out.pooled


def init_prompts(shape: Sequence[int], init: str, scale: float, device=None) -> Tensor:
    """``uniform``: U(-scale, scale) (L2P, DualPrompt); ``normal``: N(0, scale^2)."""
    t = torch.empty(*shape, device=device)
    if init == "uniform":
        return t.uniform_(-scale, scale)
    return t.normal_(0.0, scale)


def check_layers(name: str, layers: Sequence[int], num_layers: int) -> None:
    bad = [layer for layer in layers if layer >= num_layers]
    if bad:
        raise ValueError(
            f"{name} must be layer indices in [0, {num_layers}) for this backbone, got {list(layers)}"
        )


def row_keys(inputs) -> list[bytes]:
    """A content hash per sample, so that repeated epochs are counted once."""
    import hashlib

    import numpy as np

    x = inputs if isinstance(inputs, Tensor) else inputs["input_ids"]
    rows = np.ascontiguousarray(x.detach().cpu().numpy().reshape(x.shape[0], -1))
    return [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in rows]


class FeatureCollector:
    """The distinct (feature, target) pairs seen during one experience (CPU, no grad)."""

    def __init__(self) -> None:
        self._rows: dict[bytes, tuple[Tensor, int]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, inputs, features: Tensor, targets: Tensor) -> None:
        for key, f, t in zip(row_keys(inputs), features.detach().cpu(), targets.tolist(), strict=True):
            self._rows.setdefault(key, (f, int(t)))

    def tensors(self) -> tuple[Tensor, Tensor]:
        """(N, D) features and (N,) targets, in first-seen order."""
        if not self._rows:
            raise ValueError("no training sample was seen during this experience")
        feats = torch.stack([f for f, _ in self._rows.values()])
        return feats, torch.tensor([t for _, t in self._rows.values()])

    def clear(self) -> None:
        self._rows = {}


def gram_schmidt(existing: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """n random unit rows orthogonal to ``existing`` (m, d) rows and to each other (CODA-Prompt).

    When ``m + n > d`` no such set exists: the rows beyond ``d`` are plain random unit rows.
    """
    m, d = existing.shape
    fit = max(0, min(n, d - m))
    rows = torch.randn(n, d, generator=generator, dtype=torch.float64)
    if fit:
        base = existing.to(torch.float64)
        r = rows[:fit]
        if m:
            q_old, _ = torch.linalg.qr(base.T)  # (d, m) orthonormal basis of the old rows
            r = r - (r @ q_old) @ q_old.T  # project onto their orthogonal complement
        q, _ = torch.linalg.qr(r.T)  # (d, fit)
        rows[:fit] = q.T
    rows[fit:] = torch.nn.functional.normalize(rows[fit:], dim=1)
    return rows.to(existing.dtype)


class SegmentedParameter(torch.nn.Module):
    """Rows grouped in task segments: finished tasks in a frozen buffer, the current one trainable.

    Mirrors the pool's storage so no optimizer can move a finished task's rows.
    """

    def __init__(self, row_shape: Sequence[int]) -> None:
        super().__init__()
        self.row_shape = tuple(row_shape)
        self.register_buffer("frozen", torch.empty(0, *self.row_shape))  # (Nf, *row)
        self.register_parameter("current", None)  # (Nt, *row)

    def add(self, values: Tensor) -> None:
        """Freeze the current segment and start a new trainable one with ``values`` (n, *row)."""
        self.freeze()
        self.current = torch.nn.Parameter(values.detach().clone().to(self.frozen))

    def freeze(self) -> None:
        if self.current is not None:
            self.frozen = torch.cat([self.frozen, self.current.detach().clone()])
            self.current.requires_grad_(False)
            self.current = None

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [] if self.current is None else [self.current]

    def all(self) -> Tensor:
        """(N, *row): frozen rows then the current ones (differentiable for the current)."""
        return self.frozen if self.current is None else torch.cat([self.frozen, self.current])
