"""Input checks of PromptPool: clear ValueError / TypeError naming the argument."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cl_prompts.checks import is_int


def check_query(query: object, dim: int) -> torch.Tensor:
    """A finite floating (B, D) tensor with B >= 1, or a clear error."""
    if not isinstance(query, torch.Tensor):
        raise TypeError(f"query must be a torch.Tensor of shape (B, {dim}), got {type(query).__name__}")
    if not query.is_floating_point():
        raise TypeError(f"query must be a floating-point tensor, got dtype {query.dtype}")
    if query.dim() != 2 or query.shape[1] != dim:
        raise ValueError(f"query must have shape (B, {dim}), got {tuple(query.shape)}")
    if query.shape[0] == 0:
        raise ValueError(f"query must have at least one row, got shape {tuple(query.shape)}")
    if not torch.isfinite(query).all():
        raise ValueError("query contains NaN or inf values")
    return query


def check_initial(name: str, value: object, shape: tuple[int, ...]) -> None:
    """Optional initial keys / prompts: None or a finite float tensor of ``shape``."""
    if value is None:
        return
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {shape}, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(value.shape)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or inf values")


def check_ids(ids: object, size: int) -> torch.Tensor:
    """An integer tensor with every id in ``[0, size)``."""
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"ids must be a torch.Tensor, got {type(ids).__name__}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"ids must be an integer tensor, got dtype {ids.dtype}")
    ids = ids.long()
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
        raise ValueError(
            f"ids must lie in [0, {size}) (pool size {size}), got range "
            f"[{int(ids.min())}, {int(ids.max())}]"
        )
    return ids


def check_tasks(tasks: object, num_tasks: int) -> list[int]:
    """A non-empty sequence of valid task ids, returned sorted and unique."""
    if isinstance(tasks, torch.Tensor):
        tasks = tasks.tolist()
    if isinstance(tasks, (str, bytes)) or not isinstance(tasks, Sequence):
        raise TypeError(f"tasks must be a sequence of task ids, got {type(tasks).__name__}")
    out = set()
    for t in tasks:
        if not is_int(t):
            raise TypeError(f"tasks must hold ints, got {t!r}")
        if not 0 <= t < num_tasks:
            raise ValueError(f"task id {t} out of range: the pool has {num_tasks} tasks")
        out.add(t)
    if not out:
        raise ValueError("tasks must name at least one task (None selects from every task)")
    return sorted(out)


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join touching/overlapping half-open ranges (fewer faiss selectors to combine)."""
    out: list[tuple[int, int]] = []
    for start, stop in sorted(r for r in ranges if r[1] > r[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], stop))
        else:
            out.append((start, stop))
    return out
