"""Plain accuracy helpers (torch only): usable with or without an Avalanche strategy."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from cl_prompts.backbones.inputs import to_device
from cl_prompts.checks import is_int


def _dataset_of(data: Any) -> Dataset:
    # an Avalanche experience carries .dataset (a torch Subset does too, but is a dataset itself)
    dataset = data if isinstance(data, Dataset) else getattr(data, "dataset", data)
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise TypeError(
            f"experience_or_dataset must be an experience or a dataset, got {type(data).__name__}"
        )
    if hasattr(dataset, "eval"):  # Avalanche datasets: use the eval transform group
        dataset = dataset.eval()
    return dataset


def _device_of(method: torch.nn.Module) -> torch.device:
    for t in method.parameters():
        return t.device
    for t in method.buffers():
        return t.device
    return torch.device("cpu")


@torch.no_grad()
def predict(
    method: torch.nn.Module, experience_or_dataset: Any, batch_size: int = 128, device: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and targets over a whole experience or dataset, in dataset order.

    Samples are ``(x, target[, task_label])``; the task label is never given to the
    method (predictions are task-agnostic).

    Returns:
        (predictions (N,), targets (N,)) long tensors on the CPU.
    """
    if not is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    dataset = _dataset_of(experience_or_dataset)
    if len(dataset) == 0:
        raise ValueError("experience_or_dataset holds no samples")
    dev = torch.device(device) if device is not None else _device_of(method)
    collate = getattr(dataset, "collate_fn", None)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    was_training = method.training
    method.eval()
    preds, targets = [], []
    try:
        for batch in loader:
            logits = method(to_device(batch[0], dev))  # (B, C)
            preds.append(logits.argmax(dim=-1).cpu())
            targets.append(torch.as_tensor(batch[1]).long().cpu())
    finally:
        method.train(was_training)
    return torch.cat(preds), torch.cat(targets)


def evaluate_accuracy(
    method: torch.nn.Module, experience_or_dataset: Any, batch_size: int = 128, device: str | None = None
) -> float:
    """Top-1 accuracy in percent (0-100) of ``method`` on an experience or dataset."""
    preds, targets = predict(method, experience_or_dataset, batch_size, device)
    return float((preds == targets).float().mean().item() * 100.0)
