"""Scoring a model on the seen experiences of a stream: the rows of the accuracy matrix.

An evaluation after every experience scores about half the test set T/2 times over. With a
model whose prediction is slow (a causal LM scores each seen class's answer text), the
rows before the last may score a fixed per-class subsample of the test set instead
(``RunConfig.eval_subsample``); the last row scores the whole test set, and reports the
same subsample's accuracy as well, so that forgetting compares the same sentences at every row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import torch

from cl_prompts.run.distributed import Workers

SINGLE = Workers()  # one process: no slicing, no collective
SUBSAMPLE_SEED = 0  # the same subsample for every run, method and seed


class Evaluation(NamedTuple):
    """One evaluation of the experiences ``0..upto``: a value (%) per experience.

    accuracy / task_id: over the sentences scored (task_id None for methods without
    ``predict_task``); subsample: the accuracy on the per-class subsample alone, None
    when no subsample was asked for.
    """

    accuracy: list[float]
    task_id: list[float | None]
    subsample: list[float] | None


def subsample_mask(labels: torch.Tensor, per_class: int, seed: int = SUBSAMPLE_SEED) -> torch.Tensor:
    """``(N,)`` bool: at most ``per_class`` samples of each label, drawn with ``seed``.

    The draw depends only on the labels and the seed, not on the run's seed or method.
    """
    assert per_class >= 1, f"per_class must be >= 1, got {per_class}"
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    taken: dict[int, int] = {}
    mask = torch.zeros(len(labels), dtype=torch.bool)
    for i, y in zip(order.tolist(), labels[order].tolist(), strict=True):
        if taken.get(y, 0) < per_class:
            taken[y] = taken.get(y, 0) + 1
            mask[i] = True
    return mask


@torch.no_grad()
def count_experience(model, batches: Iterable[tuple], experience: int, workers: Workers = SINGLE) -> torch.Tensor:
    """``(4,)`` float64 counts over ``(inputs, targets)`` batches: total, correct, routed to
    ``experience``, and 1 if the model routes at all; summed over the ranks."""
    counts = torch.zeros(4, dtype=torch.float64)
    for inputs, targets in batches:
        counts[0] += len(targets)
        logits, picked = model.predict_with_task(inputs)
        counts[1] += int((logits.argmax(dim=-1) == targets).sum())
        if picked is not None:
            counts[3] = 1
            counts[2] += int((picked.to(targets.device) == experience).sum())
    if workers.active:
        counts = workers.sum_(counts.to(_collective_device(model))).cpu()
    return counts


def percentages(counts: torch.Tensor, experience: int) -> tuple[float, float | None]:
    """Accuracy and task-id accuracy (%, or None) from :func:`count_experience`'s counts."""
    total, correct, task_correct, has_task = counts.tolist()
    if total == 0:
        raise ValueError(f"experience {experience} has no test samples")
    return 100.0 * correct / total, (100.0 * task_correct / total if has_task else None)


def score_experience(model, batches: Iterable[tuple], experience: int,
                     workers: Workers = SINGLE) -> tuple[float, float | None]:
    """Accuracy (%) and task-id accuracy (%, or None) of ``model`` over ``(inputs, targets)`` batches.

    Predictions use no task label; task-id accuracy counts inputs routed to ``experience``
    (None for methods without ``predict_task``). workers: ``batches`` are the ones dealt to
    this rank; the counts are summed over the ranks.
    """
    return percentages(count_experience(model, batches, experience, workers), experience)


def _collective_device(model) -> torch.device:
    """Where a collective's tensors must live: nccl needs the GPU, gloo takes the CPU."""
    return model.backbone.device if torch.distributed.get_backend() == "nccl" else torch.device("cpu")


def evaluate(model, stream, upto: int, batch_size: int, workers: Workers = SINGLE, *,
             subsample: int | None = None, whole: bool = True) -> Evaluation:
    """Score ``model`` on each experience ``0..upto`` of ``stream``'s test split.

    subsample: at most this many test samples per class (:func:`subsample_mask`). With
    ``whole`` False only they are scored; with ``whole`` True every sample is, and the
    subsample's accuracy comes from the same predictions (it is scored apart from the rest).
    """
    model.eval()
    mask = None if subsample is None else subsample_mask(stream.targets("test"), subsample)
    acc, task_acc, sub_acc = [], [], []
    for j in range(upto + 1):
        idx = stream.indices("test", j)
        parts = [idx] if mask is None else [idx[mask[idx]], idx[~mask[idx]]]
        if not whole:
            parts = parts[:1]
        counts = [_count(model, stream, p, j, batch_size, workers) if len(p) else torch.zeros(4, dtype=torch.float64)
                  for p in parts]
        a, t = percentages(sum(counts), j)
        acc.append(a)
        task_acc.append(t)
        if mask is not None:
            sub_acc.append(percentages(counts[0], j)[0])
    return Evaluation(acc, task_acc, sub_acc if mask is not None else None)


def _count(model, stream, idx: torch.Tensor, experience: int, batch_size: int, workers: Workers) -> torch.Tensor:
    idx = stream.shortest_first("test", idx)  # accuracy ignores the order; alike lengths pad less
    batches = [idx[start : start + batch_size] for start in range(0, len(idx), batch_size)]
    return count_experience(model, (stream.batch("test", b) for b in workers.mine(batches)), experience, workers)
