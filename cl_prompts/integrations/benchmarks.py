"""Avalanche class-incremental benchmarks over text (and, via vision.py, images)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils.classification_dataset import _make_taskaware_classification_dataset
from torch.utils.data import Dataset, Subset

from cl_prompts.data import TextDataset, TokenizedTextDataset, load_clinc150, validate_experiences


def benchmark_from_class_groups(
    train: Dataset,
    train_targets: Sequence[int] | torch.Tensor,
    test: Dataset,
    test_targets: Sequence[int] | torch.Tensor,
    experiences: Sequence[Sequence[int]],
    *,
    class_names: Sequence[str] | None = None,
    task_labels: bool = False,
    name: str = "benchmark",
) -> CLScenario:
    """An Avalanche benchmark with one train/test experience per given class group.

    Avalanche's own ``class_incremental_benchmark`` splits a class order by counts; this
    one takes the groups themselves (e.g. CLINC150's domains).

    Args:
        train: a torch dataset returning ``(x, target)``; ``x`` is a text dict or an
            image tensor.
        test: the same, for the test samples.
        train_targets: the global class id of every training sample.
        test_targets: the global class id of every test sample.
        experiences: disjoint class-id lists covering all classes.
        task_labels: give experience ``e`` task label ``e`` (it is metadata only: the
            methods never read it); by default every sample has task label 0, as in
            class-incremental learning.

    Returns:
        A ``CLScenario`` with ``train_stream`` and ``test_stream``; every experience has
        ``current_experience``, ``classes_in_this_experience``, ``task_label``. The
        scenario also carries ``experiences_classes``, ``class_names``, ``n_classes``,
        ``classes_order`` and ``name``.
    """
    train_t = torch.as_tensor(train_targets, dtype=torch.long)
    test_t = torch.as_tensor(test_targets, dtype=torch.long)
    n_classes = int(max(train_t.max(), test_t.max())) + 1
    groups = validate_experiences([list(e) for e in experiences], n_classes)
    streams: dict[str, list] = {"train": [], "test": []}
    for stream, data, targets in (("train", train, train_t), ("test", test, test_t)):
        if len(data) != len(targets):
            raise ValueError(f"{stream}_targets must have one id per sample ({len(data)}), got {len(targets)}")
        for eid, classes in enumerate(groups):
            idx = torch.isin(targets, torch.tensor(classes)).nonzero().flatten()
            if stream == "train" and len(idx) == 0:
                raise ValueError(f"experience {eid} (classes {classes[:5]}...) has no train samples")
            sub = data.subset(idx.tolist()) if hasattr(data, "subset") else Subset(data, idx.tolist())
            streams[stream].append(
                _make_taskaware_classification_dataset(
                    sub, targets=targets[idx].tolist(), task_labels=eid if task_labels else 0
                )
            )
    bm = with_task_labels(with_classes_timeline(benchmark_from_datasets(**streams)))
    bm.experiences_classes = groups
    bm.classes_order = [c for g in groups for c in g]
    bm.n_classes = n_classes
    bm.class_names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
    bm.name = name
    return bm


def text_benchmark(
    dataset: TextDataset,
    backbone: Any,
    num_experiences: int | None = None,
    class_order_seed: int | None = None,
    *,
    per_class: int | None = None,
    test_per_class: int | None = None,
    subset_seed: int = 0,
    task_labels: bool = False,
) -> CLScenario:
    """A class-incremental Avalanche benchmark of tokenized text.

    Texts are tokenized once with ``backbone.tokenize`` (padding to its ``max_length``);
    a sample is ``({"input_ids": (T,), "attention_mask": (T,)}, target, task_label)``.

    Args:
        dataset: a :class:`~cl_prompts.data.TextDataset` (its experiences are kept unless
            regrouped by ``num_experiences`` / ``class_order_seed``).
        backbone: a text backbone (``backbone.modality == "text"``).
        per_class: a quick subset (at most that many training samples per class).
        test_per_class: the same for the test samples.
    """
    if not isinstance(dataset, TextDataset):
        raise TypeError(f"dataset must be a cl_prompts.data.TextDataset, got {type(dataset).__name__}")
    if getattr(backbone, "modality", None) != "text" or not hasattr(backbone, "tokenize"):
        raise TypeError(
            f"backbone must be a text backbone with tokenize(); got modality {getattr(backbone, 'modality', None)!r}"
        )
    if num_experiences is not None or class_order_seed is not None:
        dataset = dataset.regroup(num_experiences, class_order_seed)
    if per_class is not None or test_per_class is not None:
        dataset = dataset.subset(per_class or len(dataset.train), seed=subset_seed, test_per_class=test_per_class)
    splits = {}
    for split in ("train", "test"):
        s = getattr(dataset, split)
        splits[split] = TokenizedTextDataset(backbone.tokenize(s.texts), s.labels)
    bm = benchmark_from_class_groups(
        splits["train"], splits["train"].targets, splits["test"], splits["test"].targets,
        dataset.experiences, class_names=dataset.class_names, task_labels=task_labels, name=dataset.name,
    )
    return bm


def clinc150_benchmark(
    backbone: Any,
    num_experiences: int | None = None,
    class_order_seed: int | None = None,
    *,
    root: str | os.PathLike | None = None,
    per_class: int | None = None,
    test_per_class: int | None = None,
    subset_seed: int = 0,
    task_labels: bool = False,
) -> CLScenario:
    """CLINC150-10 (one experience per domain) as an Avalanche benchmark; see :func:`text_benchmark`."""
    return text_benchmark(
        load_clinc150(root), backbone, num_experiences, class_order_seed,
        per_class=per_class, test_per_class=test_per_class, subset_seed=subset_seed, task_labels=task_labels,
    )
