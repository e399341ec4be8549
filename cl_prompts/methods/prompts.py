"""Prompt tensors shared by the prompt methods: initialisation, task segments, a pool's contents, layer checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


def init_prompts(shape: Sequence[int], init: str, scale: float, device=None) -> Tensor:
    """``uniform``: U(-scale, scale) (L2P, DualPrompt); ``normal``: N(0, scale^2)."""
    t = torch.empty(*shape, device=device)
    if init == "uniform":
        return t.uniform_(-scale, scale)
    return t.normal_(0.0, scale)


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


@torch.no_grad()
def pool_contents(pool: Any, shared: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Every prompt (N, L, D) and key (N, D) of a :class:`~cl_prompts.pool.PromptPool`, and the
    task that added each (N,) long; ``shared``: -1 for all (a pool every experience trains)."""
    ids = torch.arange(pool.size)
    prompts, keys = pool.lookup(ids)
    tasks = torch.full_like(ids, -1) if shared else pool.task_of(ids).cpu()
    return prompts.detach(), keys.detach(), tasks


def check_layers(name: str, layers: Sequence[int], num_layers: int) -> None:
    bad = [layer for layer in layers if layer >= num_layers]
    if bad:
        raise ValueError(
            f"{name} must be layer indices in [0, {num_layers}) for this backbone, got {list(layers)}"
        )
