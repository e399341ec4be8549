"""Plain containers for class-incremental text data (no torch, no avalanche)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cl_prompts.checks import is_int


@dataclass
class TextSplit:
    """One split of a text classification dataset.

    Attributes:
        texts: N utterances.
        labels: N global class ids in ``0..C-1``.
    """

    texts: list[str]
    labels: list[int]

    def __post_init__(self) -> None:
        if not isinstance(self.texts, list) or not all(isinstance(t, str) for t in self.texts):
            raise TypeError("texts must be a list of str")
        if not isinstance(self.labels, list):
            raise TypeError("labels must be a list of int")
        self.labels = [_as_label(v) for v in self.labels]
        if len(self.texts) != len(self.labels):
            raise ValueError(
                f"texts and labels must have the same length, got {len(self.texts)} "
                f"and {len(self.labels)}"
            )

    def __len__(self) -> int:
        return len(self.texts)

    def classes(self) -> list[int]:
        """Sorted class ids present in this split."""
        return sorted(set(self.labels))

    def take(self, indices: Sequence[int]) -> TextSplit:
        """A new split holding the samples at ``indices`` (in that order)."""
        return TextSplit([self.texts[i] for i in indices], [self.labels[i] for i in indices])

    def per_class_subset(self, per_class: int, seed: int = 0) -> TextSplit:
        """At most ``per_class`` samples of every class, drawn without replacement.

        The original order of the kept samples is preserved so that a subset is a
        faithful miniature of the split.
        """
        return self.take(self.per_class_indices(per_class, seed))

    def per_class_indices(self, per_class: int, seed: int = 0, classes: Sequence[int] | None = None) -> list[int]:
        """Sorted row indices: at most ``per_class`` of each class in ``classes`` (default: all),
        every row of the other classes."""
        if not is_int(per_class) or per_class < 1:
            raise ValueError(f"per_class must be a positive int, got {per_class!r}")
        rng = np.random.default_rng(seed)
        labels = np.asarray(self.labels)
        cut = set(self.classes() if classes is None else classes)
        keep: list[int] = []
        for c in self.classes():
            idx = np.flatnonzero(labels == c)
            if c in cut and len(idx) > per_class:
                idx = rng.choice(idx, size=per_class, replace=False)
            keep.extend(int(i) for i in idx)
        return sorted(keep)


def _as_label(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"labels must be ints (class ids), got {value!r}")
    if value < 0:
        raise ValueError(f"labels must be >= 0, got {value}")
    return int(value)


class ExperienceNames:
    """What text and image datasets share: class and experience counts, experience names.

    Needs ``class_names``, ``experiences`` and ``info`` attributes.
    """

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_experiences(self) -> int:
        return len(self.experiences)

    def experience_names(self) -> list[str]:
        """A short name per experience, for plots and tables.

        The benchmark's own names when the experiences are its grouping (``info
        ["experience_names"]``, e.g. CLINC150's domains), else the experience's first
        class name and how many more it holds (``"book_flight +14"``).
        """
        names = self.info.get("experience_names")
        if isinstance(names, list) and len(names) == len(self.experiences):
            return [str(n) for n in names]
        return [self.class_names[e[0]] + (f" +{len(e) - 1}" if len(e) > 1 else "") for e in self.experiences]


@dataclass
class TextDataset(ExperienceNames):
    """A class-incremental text dataset: splits, class names, experiences.

    Attributes:
        train, test: the splits; every test class must occur in train.
        class_names: C names; class id ``i`` is ``class_names[i]``.
        experiences: disjoint lists of class ids covering ``0..C-1``;
            experience ``e`` introduces the classes ``experiences[e]``.
        name: a short identifier, e.g. ``"clinc150"``.
        calibration: optional in-scope held-out data, neither trained on nor reported
            (CLINC150's ``val`` when ``test`` is the evaluation split): a finished run
            calibrates its out-of-scope threshold on it (:mod:`cl_prompts.inference`).
    """

    train: TextSplit
    test: TextSplit
    class_names: list[str]
    experiences: list[list[int]]
    name: str = "text"
    info: dict = field(default_factory=dict)
    calibration: TextSplit | None = None

    def __post_init__(self) -> None:
        for arg in ("train", "test"):
            if not isinstance(getattr(self, arg), TextSplit):
                raise TypeError(f"{arg} must be a TextSplit, got {type(getattr(self, arg)).__name__}")
        if len(self.train) == 0:
            raise ValueError("train must not be empty")
        if len(self.test) == 0:
            raise ValueError("test must not be empty")
        if self.calibration is not None and not isinstance(self.calibration, TextSplit):
            raise TypeError(f"calibration must be a TextSplit or None, got {type(self.calibration).__name__}")
        num_classes = len(self.class_names)
        held_out = self.calibration.classes() if self.calibration is not None else []
        bad = [c for c in self.train.classes() + self.test.classes() + held_out if c >= num_classes]
        if bad:
            raise ValueError(
                f"labels must be < len(class_names) = {num_classes}, got class id {max(bad)}"
            )
        unseen = sorted(set(self.test.classes()) - set(self.train.classes()))
        if unseen:
            names = [self.class_names[c] for c in unseen[:5]]
            raise ValueError(
                f"test has labels never seen in train: {names}"
                + (f" and {len(unseen) - 5} more" if len(unseen) > 5 else "")
            )
        self.experiences = validate_experiences(self.experiences, num_classes)

    def fingerprint(self) -> str:
        """sha256 (hex) of the texts, labels, class names and experiences of the splits.

        A resumed run compares it with its checkpoint's: changed data is refused.
        """
        h = hashlib.sha256()
        parts = [self.train.texts, self.train.labels, self.test.texts, self.test.labels,
                 self.class_names, self.experiences]
        if self.calibration is not None:
            parts += [self.calibration.texts, self.calibration.labels]
        for part in parts:
            h.update(json.dumps(part, ensure_ascii=False).encode("utf-8"))
            h.update(b"\0")
        return h.hexdigest()

    def class_order(self) -> list[int]:
        """The classes in order of appearance over the experiences."""
        return [c for exp in self.experiences for c in exp]

    def regroup(self, num_experiences: int | None = None, class_order_seed: int | None = None,
                order: Sequence[int] | None = None) -> TextDataset:
        """The same data with another class order and/or number of experiences.

        Args:
            num_experiences: split the class order into this many near-equal groups
                (``None`` keeps the current number of experiences).
            class_order_seed: ``None`` keeps the current order; an int draws a seeded
                random permutation of all classes (see :func:`class_order`).
            order: an explicit order of all class ids (excludes ``class_order_seed``).
        """
        if order is not None and class_order_seed is not None:
            raise ValueError("order and class_order_seed exclude each other: give one")
        if order is not None:
            order = [int(c) for c in order]
            if sorted(order) != list(range(self.num_classes)):
                raise ValueError(f"order must list every class id 0..{self.num_classes - 1} once")
        elif class_order_seed is not None:
            order = class_order(self.num_classes, class_order_seed)
        reordered = order is not None
        order = self.class_order() if order is None else order
        n = self.num_experiences if num_experiences is None else num_experiences
        if num_experiences is None and reordered:
            # keep the sizes of the current experiences, only reshuffle which classes
            sizes = [len(e) for e in self.experiences]
            groups, start = [], 0
            for s in sizes:
                groups.append(order[start : start + s])
                start += s
        else:
            groups = split_classes(order, n)
        info = dict(self.info)
        if groups != self.experiences:
            info.pop("experience_names", None)  # they named the old groups
        return TextDataset(self.train, self.test, list(self.class_names), groups, self.name, info,
                           self.calibration)

    def subset(self, per_class: int, seed: int = 0, test_per_class: int | None = None) -> TextDataset:
        """A quick version: at most ``per_class`` train (and ``test_per_class`` test) samples per class."""
        def cut(split: TextSplit | None) -> TextSplit | None:
            return split if split is None or test_per_class is None else split.per_class_subset(test_per_class, seed)

        return TextDataset(
            self.train.per_class_subset(per_class, seed), cut(self.test), list(self.class_names),
            [list(e) for e in self.experiences], self.name, dict(self.info), cut(self.calibration),
        )

    def few_shot(self, experience: int, per_class: int, seed: int = 0) -> TextDataset:
        """The same stream with experience ``experience`` cut to ``per_class`` training samples per class."""
        if not is_int(experience) or not 0 <= experience < self.num_experiences:
            raise ValueError(f"experience must be an int in 0..{self.num_experiences - 1}, got {experience!r}")
        keep = self.train.per_class_indices(per_class, seed, classes=self.experiences[experience])
        return TextDataset(self.train.take(keep), self.test, list(self.class_names),
                           [list(e) for e in self.experiences], self.name, dict(self.info), self.calibration)

    def first_experiences(self, n: int) -> TextDataset:
        """The stream cut after its first ``n`` experiences; their classes renumbered 0..K-1 in order."""
        if not is_int(n) or not 1 <= n <= self.num_experiences:
            raise ValueError(f"n must be an int in 1..{self.num_experiences}, got {n!r}")
        kept = [c for e in self.experiences[:n] for c in e]
        new_id = {c: i for i, c in enumerate(kept)}

        def cut(split: TextSplit | None) -> TextSplit | None:
            if split is None:
                return None
            rows = [i for i, y in enumerate(split.labels) if y in new_id]
            return TextSplit([split.texts[i] for i in rows], [new_id[split.labels[i]] for i in rows])

        info = dict(self.info)
        if isinstance(info.get("experience_names"), list):
            info["experience_names"] = info["experience_names"][:n]
        groups = [[new_id[c] for c in e] for e in self.experiences[:n]]
        return TextDataset(cut(self.train), cut(self.test), [self.class_names[c] for c in kept], groups,
                           self.name, info, cut(self.calibration))


def class_order(num_classes: int, seed: int) -> list[int]:
    """A seeded random permutation of ``0..num_classes-1`` (numpy PCG64, stable across runs)."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if not is_int(seed):
        raise TypeError(f"class_order_seed must be an int, got {seed!r}")
    return [int(c) for c in np.random.default_rng(seed).permutation(num_classes)]


def split_classes(order: Sequence[int], num_experiences: int) -> list[list[int]]:
    """Split a class order into ``num_experiences`` consecutive near-equal groups.

    The first ``len(order) % num_experiences`` groups get one class more.
    """
    if not is_int(num_experiences) or num_experiences < 1:
        raise ValueError(f"num_experiences must be a positive int, got {num_experiences!r}")
    if num_experiences > len(order):
        raise ValueError(
            f"num_experiences must be <= the number of classes ({len(order)}), got {num_experiences}"
        )
    return [[int(c) for c in g] for g in np.array_split(np.asarray(order, dtype=np.int64), num_experiences)]


def validate_experiences(experiences: Sequence[Sequence[int]], num_classes: int) -> list[list[int]]:
    """Check experiences are non-empty, disjoint and cover ``0..num_classes-1`` exactly."""
    if not isinstance(experiences, (list, tuple)) or not experiences:
        raise ValueError("experiences must be a non-empty list of class-id lists")
    out = [[_as_label(c) for c in exp] for exp in experiences]
    if any(len(exp) == 0 for exp in out):
        raise ValueError("experiences must not contain an empty experience")
    flat = [c for exp in out for c in exp]
    if len(flat) != len(set(flat)):
        raise ValueError("experiences must be disjoint: a class appears in two experiences")
    if sorted(flat) != list(range(num_classes)):
        missing = sorted(set(range(num_classes)) - set(flat))
        raise ValueError(
            f"experiences must cover every class 0..{num_classes - 1} exactly once; "
            f"missing {missing[:5]}, extra {sorted(set(flat) - set(range(num_classes)))[:5]}"
        )
    return out


def stratified_split(split: TextSplit, fraction: float, seed: int) -> tuple[TextSplit, TextSplit]:
    """(kept, held out): ``round(fraction * n_c)`` samples of each class with n_c >= 2 held out (at least one).

    A class with a single sample stays whole in the kept part. Seeded (numpy PCG64).
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(split.labels)
    held_idx: list[int] = []
    for c in split.classes():
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            continue  # a single sample must stay in train
        n_held = min(len(idx) - 1, max(1, round(fraction * len(idx))))
        held_idx.extend(int(i) for i in rng.choice(idx, size=n_held, replace=False))
    held = set(held_idx)
    kept = [i for i in range(len(split)) if i not in held]
    return split.take(kept), split.take(sorted(held_idx))
