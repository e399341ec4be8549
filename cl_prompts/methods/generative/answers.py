"""Class answer texts: a class name made readable, or the user's ``label,text`` file."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

from cl_prompts.safe_io import read_bytes

# A label-text file is a small table: one row per class.
MAX_LABEL_TEXT_BYTES = 16 << 20


def readable_label(name: str) -> str:
    """``"card_arrival"`` -> ``"card arrival"``: underscores, dashes and repeated spaces become one space."""
    text = re.sub(r"[_\-\s]+", " ", str(name)).strip()
    if not text:
        raise ValueError(f"class name {name!r} gives an empty answer text; give one with a label-text file")
    return text


def check_answer_texts(texts: Sequence[str], num_classes: int) -> list[str]:
    """``texts`` as a list of C distinct non-empty strings, else a ValueError naming the problem."""
    texts = list(texts)
    if len(texts) != num_classes:
        raise ValueError(f"answer texts must hold one text per class ({num_classes}), got {len(texts)}")
    bad = [t for t in texts if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ValueError(f"answer texts must be non-empty strings, got {bad[:3]!r}")
    seen: dict[str, int] = {}
    for c, t in enumerate(texts):
        if t.strip() in seen:
            raise ValueError(f"classes {seen[t.strip()]} and {c} share the answer text {t!r}: "
                             "the model could not tell them apart")
        seen[t.strip()] = c
    return [t.strip() for t in texts]


def read_label_texts(path: str | Path, class_names: Sequence[str]) -> list[str]:
    """Answer texts of ``class_names`` from a CSV file of ``label,text`` rows (a header row
    ``label,text`` is optional); classes the file leaves out keep their readable name."""
    path = Path(path)
    rows = list(csv.reader(io.StringIO(read_bytes(path, "label-text file", MAX_LABEL_TEXT_BYTES).decode("utf-8"))))
    if rows and [c.strip().lower() for c in rows[0]] == ["label", "text"]:
        rows = rows[1:]
    given: dict[str, str] = {}
    for n, row in enumerate(rows, start=1):
        if not row:
            continue
        if len(row) != 2:
            raise ValueError(f"{path}: row {n} must be 'label,text', got {len(row)} fields")
        label, text = row[0].strip(), row[1].strip()
        if label in given:
            raise ValueError(f"{path}: label {label!r} is given twice")
        given[label] = text
    unknown = sorted(set(given) - set(class_names))
    if unknown:
        raise ValueError(f"{path}: labels {unknown[:5]} are not classes of this data set")
    texts = [given.get(name) or readable_label(name) for name in class_names]
    return check_answer_texts(texts, len(class_names))
