"""Validation and light reshaping of backbone inputs and prompts (no transformers import)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from cl_prompts.checks import is_int

Inputs = dict[str, torch.Tensor] | torch.Tensor


def to_device(inputs: Inputs, device: torch.device | str) -> Inputs:
    """Move a text batch dict (keeping its mapping type) or a vision tensor to ``device``."""
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device, non_blocking=True)
    if isinstance(inputs, Mapping):
        moved = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                 for k, v in inputs.items()}
        return moved if type(inputs) is dict else type(inputs)(moved)
    raise TypeError(f"inputs must be a dict of tensors or a tensor, got {type(inputs).__name__}")


def _lead(inputs: Inputs) -> torch.Tensor:
    return inputs["input_ids"] if isinstance(inputs, Mapping) else inputs


def batch_size(inputs: Inputs) -> int:
    return _lead(inputs).shape[0]


def batch_device(inputs: Inputs) -> torch.device:
    return _lead(inputs).device


def index_rows(inputs: Inputs, rows: torch.Tensor) -> Inputs:
    """The sub-batch ``rows`` (M,) of a text dict or a vision tensor."""
    if isinstance(inputs, Mapping):
        return {k: v[rows] for k, v in inputs.items()}
    return inputs[rows]


def _shape(x) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def prepare(inputs: Inputs, modality: str, dtype: torch.dtype,
            trim_leading: bool = False) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Validate inputs; returns the model's kwargs and the (B, T) long mask (None for vision).

    Text columns that are padding in every row are trimmed from the end: they change
    nothing (they are masked out) but cost time, and datasets pad to a fixed max_length.
    ``trim_leading`` trims them from the start too (left padding), for models whose
    position ids count real columns only; an encoder's count every column.
    """
    if modality == "text":
        if not isinstance(inputs, Mapping) or "input_ids" not in inputs:
            raise TypeError("text inputs must be a dict with 'input_ids' and 'attention_mask'")
        ids = inputs["input_ids"]
        if ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (B, T), got {tuple(ids.shape)}")
        mask = inputs.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else mask.to(ids.device).long()
        if mask.shape != ids.shape:
            raise ValueError(f"attention_mask must have shape {tuple(ids.shape)}, got {tuple(mask.shape)}")
        real_cols = mask.any(dim=0).nonzero()
        width = int(real_cols.max()) + 1 if real_cols.numel() else 1
        start = int(real_cols.min()) if trim_leading and real_cols.numel() else 0
        ids, mask = ids[:, start:width], mask[:, start:width]  # (B, T')
        return {"input_ids": ids, "attention_mask": mask}, mask
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
        raise ValueError(f"vision inputs must be pixel values of shape (B, 3, H, W), got {_shape(inputs)}")
    return {"pixel_values": inputs.to(dtype)}, None


def check_input_prompts(prompts: torch.Tensor | None, batch: int, hidden: int) -> torch.Tensor | None:
    """(B|1, P, D) -> (B, P, D); None when absent or P == 0."""
    if prompts is None:
        return None
    if not isinstance(prompts, torch.Tensor) or prompts.dim() != 3 or prompts.shape[-1] != hidden:
        raise ValueError(f"input_prompts must have shape ({batch}, P, {hidden}), got {_shape(prompts)}")
    if prompts.shape[0] not in (1, batch):
        raise ValueError(f"input_prompts must have batch size {batch} (or 1), got {prompts.shape[0]}")
    if prompts.shape[1] == 0:
        return None
    return prompts.expand(batch, -1, -1)


def check_prefixes(
    prefixes: Mapping[int, torch.Tensor] | None, batch: int, hidden: int, num_layers: int
) -> dict[int, torch.Tensor] | None:
    """{layer: (B|1, 2, P, D)} -> {layer: (B, 2, P, D)}; None when empty."""
    if not prefixes:
        return None
    if not isinstance(prefixes, Mapping):
        raise TypeError(f"prefix_prompts must be a dict {{layer: tensor}}, got {type(prefixes).__name__}")
    checked = {}
    for layer, prefix in prefixes.items():
        if not is_int(layer) or not 0 <= layer < num_layers:
            raise ValueError(f"prefix_prompts keys must be layer indices in [0, {num_layers}), got {layer!r}")
        ok = isinstance(prefix, torch.Tensor) and prefix.dim() == 4 and prefix.shape[1] == 2
        if not ok or prefix.shape[-1] != hidden or prefix.shape[0] not in (1, batch):
            raise ValueError(f"prefix_prompts[{layer}] must have shape ({batch}, 2, P, {hidden}), got {_shape(prefix)}")
        checked[layer] = prefix.expand(batch, -1, -1, -1)
    return checked
