"""Checks of the tensors of a saved method before they are used: a corrupted or edited file
must be refused, naming the file and the tensor, not change predictions without a word."""

from __future__ import annotations

import torch

# Integer buffers and their valid ranges [low, high), by the end of their name.
# high is computed from the method: C = num_classes, T = number of experiences.
_RANGES = {
    "usage": lambda c, t: (0, None),
    "usage_at_task_start": lambda c, t: (0, None),
    "memory_targets": lambda c, t: (0, c),
    "class_to_block": lambda c, t: (-1, t),
    "class_task": lambda c, t: (-1, t),
}
_COUNTS = ("class_counts",)  # float statistics that must not be negative


def check_loaded_tensors(tensors: dict[str, torch.Tensor], source: str, num_classes: int,
                         num_experiences: int) -> None:
    """Raise ``ValueError`` for a non-finite float tensor, a negative count or an id out of range."""
    for name, value in tensors.items():
        leaf = name.rsplit(".", 1)[-1]
        is_table = leaf in _RANGES or (leaf.startswith("block") and leaf.endswith("_classes"))
        if is_table and (value.is_floating_point() or value.is_complex()):
            raise ValueError(f"{source}: tensor {name!r} must hold integer ids or counts, got dtype "
                             f"{value.dtype}; the file is corrupted")
        if value.is_floating_point():
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"{source}: tensor {name!r} holds NaN or inf values; the file is corrupted")
            if leaf in _COUNTS and bool((value < 0).any()):
                raise ValueError(f"{source}: tensor {name!r} holds negative counts; the file is corrupted")
            continue
        if value.dtype == torch.bool or value.numel() == 0:
            continue
        if leaf.startswith("block") and leaf.endswith("_classes"):
            low, high = 0, num_classes
        elif leaf in _RANGES:
            low, high = _RANGES[leaf](num_classes, num_experiences)
        else:
            continue
        lo, hi = int(value.min()), int(value.max())
        if lo < low or (high is not None and hi >= high):
            allowed = f"[{low}, {high})" if high is not None else f">= {low}"
            raise ValueError(f"{source}: tensor {name!r} holds values in [{lo}, {hi}], outside {allowed}; "
                             "the file is corrupted")
