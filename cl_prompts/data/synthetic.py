"""A tiny synthetic text stream for tests and smoke runs (no files, no network)."""

from __future__ import annotations

import numpy as np

from cl_prompts.checks import is_int
from cl_prompts.data.types import TextDataset, TextSplit, split_classes

# Plain English words (single word pieces in BERT vocabularies) so that a tokenizer
# maps each to one token: class c is signalled by its own keyword.
_KEYWORDS = (
    "apple", "river", "guitar", "planet", "doctor", "winter", "coffee", "garden",
    "window", "engine", "silver", "forest", "market", "camera", "island", "bridge",
    "pencil", "rabbit", "castle", "ticket", "summer", "butter", "school", "yellow",
)
_FILLER = ("the", "a", "is", "of", "and", "to", "my", "it", "with", "for", "on", "this")


def synthetic_text_dataset(
    num_classes: int = 6,
    num_experiences: int = 3,
    train_per_class: int = 8,
    test_per_class: int = 4,
    words_per_text: int = 6,
    seed: int = 0,
    calibration_per_class: int = 0,
) -> TextDataset:
    """A separable toy dataset: each text holds its class keyword among filler words.

    calibration_per_class: held-out in-scope texts per class for out-of-scope calibration
    (``TextDataset.calibration``; 0: none). Drawn last: the other splits do not change.

    Returns:
        TextDataset named ``"synthetic"`` with classes ``0..num_classes-1`` split
        in order into ``num_experiences`` experiences.
    """
    for arg, value, low in (
        ("num_classes", num_classes, 1), ("train_per_class", train_per_class, 1),
        ("test_per_class", test_per_class, 1), ("words_per_text", words_per_text, 1),
    ):
        if not is_int(value) or value < low:
            raise ValueError(f"{arg} must be an int >= {low}, got {value!r}")
    if num_classes > len(_KEYWORDS):
        raise ValueError(f"num_classes must be <= {len(_KEYWORDS)}, got {num_classes}")
    rng = np.random.default_rng(seed)

    def make(per_class: int) -> TextSplit:
        texts, labels = [], []
        for _ in range(per_class):
            for c in range(num_classes):
                words = list(rng.choice(_FILLER, size=words_per_text - 1))
                words.insert(int(rng.integers(0, words_per_text)), _KEYWORDS[c])
                texts.append(" ".join(words))
                labels.append(c)
        return TextSplit(texts, labels)

    train, test = make(train_per_class), make(test_per_class)
    return TextDataset(
        train, test, list(_KEYWORDS[:num_classes]),
        split_classes(list(range(num_classes)), num_experiences), name="synthetic",
        calibration=make(calibration_per_class) if calibration_per_class > 0 else None,
    )
