"""Which prompts a trained method picks, over a dataset: usage counts and task identification.

:func:`collect_routing` runs a method's ``routing`` hook over the test (or train) samples of
the experiences seen and keeps, per sample, its class, its true experience, the experience
it was routed to, the prompt ids and the key scores. The other functions turn that record
into arrays; ``cl_prompts.analysis.plots`` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cl_prompts.checks import check_choice, check_positive


@dataclass
class RoutingRecord:
    """What a method's key index chose for N samples (numpy arrays).

    Attributes:
        labels: (N,) class ids.
        experience: (N,) the experience each sample's class belongs to.
        routed: (N,) the experience it was routed to (-1: a shared pool routes to none).
        prompt_ids: (N, k) pool ids of the prompts used, best first.
        key_scores: (N, k) the key index's scores of those prompts.
        queries: (N, W) what was matched against the keys, or None.
        experiences: the class ids of each experience collected (the dataset's order).
    """

    labels: np.ndarray
    experience: np.ndarray
    routed: np.ndarray
    prompt_ids: np.ndarray
    key_scores: np.ndarray
    queries: np.ndarray | None
    experiences: list[list[int]]


@torch.no_grad()
def collect_routing(model, dataset, *, split: str = "test", upto: int | None = None,
                    batch_size: int = 128, keep_queries: bool = True) -> RoutingRecord:
    """Run ``model.routing`` over ``split`` samples of experiences ``0..upto`` (default: all seen).

    ``dataset`` is a text or image dataset of the runner (``load_clinc150``, ``load_text_file``,
    ``load_image_benchmark``). Raises ValueError for a method without prompt routing.
    """
    from cl_prompts.run.loop import make_stream

    check_choice("split", split, ("train", "test"))
    check_positive("batch_size", batch_size, integer=True)
    seen = model.current_experience + 1
    if seen == 0:
        raise ValueError("the model has seen no experience yet: train it first")
    upto = seen - 1 if upto is None else upto
    if not 0 <= upto < seen:
        raise ValueError(f"upto must be an experience the model has seen (0..{seen - 1}), got {upto}")
    model.eval()
    stream = make_stream(dataset, model.backbone, str(model.backbone.device))
    owner = {c: e for e, classes in enumerate(stream.experiences) for c in classes}
    parts: dict[str, list] = {k: [] for k in ("labels", "routed", "prompt_ids", "key_scores", "queries")}
    for e in range(upto + 1):
        idx = stream.indices(split, e)
        for start in range(0, len(idx), batch_size):
            inputs, targets = stream.batch(split, idx[start:start + batch_size])
            route = model.routing(inputs)
            if route is None:
                raise ValueError(f"method {model.name!r} has no prompt routing to inspect")
            parts["labels"].append(targets.cpu())
            parts["routed"].append(route.experience.cpu())
            parts["prompt_ids"].append(route.prompt_ids.cpu())
            parts["key_scores"].append(route.key_scores.float().cpu())
            if keep_queries and route.queries is not None:
                parts["queries"].append(route.queries.float().cpu())
    labels = torch.cat(parts["labels"]).numpy()
    return RoutingRecord(
        labels=labels,
        experience=np.array([owner[int(c)] for c in labels], dtype=np.int64),
        routed=torch.cat(parts["routed"]).numpy(),
        prompt_ids=torch.cat(parts["prompt_ids"]).numpy(),
        key_scores=torch.cat(parts["key_scores"]).numpy(),
        queries=torch.cat(parts["queries"]).numpy() if parts["queries"] else None,
        experiences=[list(c) for c in stream.experiences[: upto + 1]],
    )


def prompt_usage(record: RoutingRecord, num_prompts: int | None = None, *, top: int | None = None
                 ) -> dict[str, np.ndarray]:
    """How often each prompt was selected, per experience and per class.

    Counts every one of the k prompts an input used (``top``: only the first ``top`` of them).
    Returns ``per_experience`` (E, P) and ``per_class`` (C, P) int64 counts, and ``share``
    (E, P): each experience's row divided by its number of inputs (a prompt every input of
    the experience used has share 1).
    """
    ids = record.prompt_ids[:, :top] if top is not None else record.prompt_ids
    p = int(num_prompts if num_prompts is not None else ids.max(initial=-1) + 1)
    if p <= 0:
        raise ValueError("the record selects no prompt")
    n_exp = len(record.experiences)
    n_cls = max(c for classes in record.experiences for c in classes) + 1  # the labels are among them
    per_experience = np.zeros((n_exp, p), dtype=np.int64)
    per_class = np.zeros((n_cls, p), dtype=np.int64)
    for column in ids.T:  # (N,) each
        ok = (column >= 0) & (column < p)
        np.add.at(per_experience, (record.experience[ok], column[ok]), 1)
        np.add.at(per_class, (record.labels[ok], column[ok]), 1)
    inputs = np.bincount(record.experience, minlength=n_exp)[:, None]
    share = np.divide(per_experience, inputs, out=np.zeros_like(per_experience, dtype=float), where=inputs > 0)
    return {"per_experience": per_experience, "per_class": per_class, "share": share}


def task_identification(record: RoutingRecord) -> dict[str, np.ndarray | float]:
    """For inputs of experience i, the share routed to experience j: ``matrix`` (E, E) (rows sum to
    1 over the experiences seen; a row's rest went to none), its diagonal ``per_experience`` and
    ``accuracy``, the share of all inputs routed to their own experience."""
    if (record.routed < 0).all():
        raise ValueError("this method routes to no single experience (a shared pool): use prompt_usage")
    n = len(record.experiences)
    counts = np.zeros((n, n), dtype=np.int64)
    ok = (record.routed >= 0) & (record.routed < n)
    np.add.at(counts, (record.experience[ok], record.routed[ok]), 1)
    totals = np.bincount(record.experience, minlength=n)[:, None]
    matrix = np.divide(counts, totals, out=np.zeros((n, n)), where=totals > 0)
    return {"matrix": matrix, "per_experience": np.diag(matrix).copy(),
            "accuracy": float((record.routed == record.experience).mean())}
