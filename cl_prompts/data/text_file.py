"""Bring-your-own text data: a CSV/TSV/JSON/JSONL file of (text, label) rows."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

from cl_prompts.checks import is_number
from cl_prompts.data.types import (
    TextDataset,
    TextSplit,
    class_order,
    split_classes,
    stratified_split,
)
from cl_prompts.safe_io import check_regular

SUFFIXES = (".csv", ".tsv", ".json", ".jsonl")
GENERIC_STEMS = ("train", "data", "dataset", "all")


def read_rows(path: str | os.PathLike, text_column: str = "text", label_column: str = "label") -> tuple[list[str], list[str]]:
    """Read (texts, label strings) from one file; every error names the file and the problem."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"path must be a file, got the directory {p}")
    if not p.exists():
        raise FileNotFoundError(f"path: no such file {p}")
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"path must end with one of {SUFFIXES}, got {p.name!r}")
    if suffix in (".csv", ".tsv"):
        rows, columns = read_delimited_rows(p, suffix)
    else:
        rows = read_json_rows(p, suffix)
        columns = sorted({k for r in rows for k in r}) if rows else []
        _check_label_types(p, rows, label_column)
    if not rows:
        raise ValueError(f"{p}: the file holds no rows")
    for arg, col in (("text_column", text_column), ("label_column", label_column)):
        if col not in columns:
            flag = "--" + arg.replace("_", "-")
            raise ValueError(f"{p}: {arg}={col!r} is not a column; columns are {columns} "
                             f"(choose the column with {flag} on the command line, {arg}= in Python)")
    texts, labels = [], []
    for i, row in enumerate(rows):
        text, label = row.get(text_column), row.get(label_column)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{p}: row {i} has an empty or missing {text_column!r}")
        if label is None or (isinstance(label, str) and not label.strip()) or isinstance(label, (dict, list)):
            raise ValueError(f"{p}: row {i} has an empty or invalid {label_column!r}: {label!r}")
        texts.append(text)
        labels.append(str(label).strip())
    return texts, labels


def _open_text(p: Path):
    """UTF-8, with or without the byte-order mark spreadsheet programs write; a regular file only
    (a FIFO would hang the read, ``/dev/zero`` fill the memory)."""
    check_regular(p, "data file")
    return open(p, newline="", encoding="utf-8-sig")


def read_delimited_rows(p: Path, suffix: str) -> tuple[list[dict], list[str]]:
    """CSV (standard quoting) or TSV (no quoting: a ``"`` is text); refuses what would shift columns.

    Row numbers in errors are the file's lines (the header is line 1).
    """
    tsv = suffix == ".tsv"
    try:
        with _open_text(p) as f:
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else csv.reader(f)
            table = [(reader.line_num, row) for row in reader if row]
    except UnicodeDecodeError as e:
        raise ValueError(f"{p}: not UTF-8 text (byte {e.start}: {e.reason}); save the file as UTF-8") from e
    except csv.Error as e:  # e.g. a field over the csv module's size limit
        raise ValueError(f"{p}: line {reader.line_num} cannot be read as {suffix[1:].upper()} ({e})") from None
    if not table:
        return [], []
    columns = table[0][1]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(f"{p}: the header repeats column(s) {repeated}; every column name must be unique")
    rows = []
    for line, row in table[1:]:
        if len(row) != len(columns):
            hint = "" if tsv else " (a comma inside a text must be quoted)"
            raise ValueError(f"{p}: line {line} has {len(row)} fields, the header has {len(columns)}{hint}")
        rows.append(dict(zip(columns, row, strict=True)))
    return rows, columns


def _check_label_types(p: Path, rows: list[dict], label_column: str) -> None:
    """JSON labels are all strings or all integers: ``1`` and ``"1"`` would otherwise merge."""
    kinds: dict[str, int] = {}
    for i, row in enumerate(rows):
        label = row.get(label_column)
        if isinstance(label, bool) or (label is not None and not isinstance(label, (str, int))):
            raise ValueError(f"{p}: row {i} has label {label!r}; JSON labels must be strings or integers")
        if label is not None:
            kinds.setdefault("string" if isinstance(label, str) else "integer", i)
    if len(kinds) > 1:
        raise ValueError(f"{p}: labels mix strings (row {kinds['string']}) and integers (row {kinds['integer']}); "
                         "use one type for every label")


def read_json_rows(p: Path, suffix: str) -> list[dict]:
    """The rows (dicts) of a ``.json`` list or a ``.jsonl`` file, one object per line."""
    with _open_text(p) as f:
        if suffix == ".jsonl":
            rows = []
            for n, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{p}: line {n} is not valid JSON ({e.msg})") from e
                    except RecursionError:
                        raise ValueError(f"{p}: line {n} is nested too deeply") from None
        else:
            try:
                rows = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}: not valid JSON ({e})") from e
            except RecursionError:
                raise ValueError(f"{p}: the JSON is nested too deeply") from None
    if isinstance(rows, dict) and isinstance(rows.get("data"), list):
        rows = rows["data"]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{p}: JSON must be a list of objects (or {{'data': [...]}}), one per sample")
    return rows


def _label_order(label: str) -> tuple:
    """Finite numbers first, by value ("9" before "10"), then every other label as text.

    A total order ("nan" and "inf" are text), so class ids never depend on the process.
    """
    try:
        value = float(label)
    except ValueError:
        return (1, 0.0, label)
    return (0, value, label) if math.isfinite(value) else (1, 0.0, label)


def _sorted_labels(labels: set[str]) -> list[str]:
    return sorted(labels, key=_label_order)


def load_text_file(
    path: str | os.PathLike,
    text_column: str = "text",
    label_column: str = "label",
    *,
    test_path: str | os.PathLike | None = None,
    test_fraction: float = 0.2,
    num_experiences: int | None = None,
    class_order_seed: int | None = None,
    seed: int = 0,
    eval_split: str = "test",
    val_fraction: float = 0.1,
    calibration_fraction: float = 0.0,
) -> TextDataset:
    """A class-incremental dataset from your own file(s) of (text, label).

    Class ids are the sorted distinct train labels: finite numbers by value first, then
    the others as text (``"nan"`` and ``"inf"`` included), the same in every process.

    Args:
        path: ``.csv`` (standard quoting), ``.tsv`` (tab-separated, no quoting: a ``"``
            is text), ``.json`` (a list of objects) or ``.jsonl`` file, UTF-8 with or
            without a byte-order mark. A repeated header name or a row with another
            number of fields than the header is refused with its line; JSON labels must
            be all strings or all integers.
        text_column: the text column's (key's) name.
        label_column: the label column's (key's) name.
        test_path: a separate test file with the same columns; without it a stratified
            ``test_fraction`` of each class (seeded by ``seed``) becomes the test split.
        num_experiences: how many experiences (default ``min(5, num_classes)``).
        class_order_seed: a seeded random class order instead of the sorted one.
        eval_split: ``"test"`` evaluates on the test split; ``"val"`` holds out a
            stratified ``val_fraction`` of the training rows (seeded by ``seed``) as the
            evaluation split and trains on the rest; ``test_path`` is then never read.
        calibration_fraction: hold out this stratified share of the training rows (0: none)
            as ``calibration``: in-scope texts never trained on, on which a run fits its
            out-of-scope threshold (docs/inference.md).

    Raises:
        FileNotFoundError / IsADirectoryError: a bad path.
        ValueError: missing columns, an empty file or value, a test label never seen in
            train, a bad ``test_fraction`` or ``num_experiences``.
    """
    for name, value in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not is_number(value) or not 0.0 < float(value) < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    if not is_number(calibration_fraction) or not 0.0 <= float(calibration_fraction) < 1.0:
        raise ValueError(f"calibration_fraction must be in [0, 1), got {calibration_fraction!r}")
    if eval_split not in ("test", "val"):
        raise ValueError(f"eval_split must be 'test' or 'val', got {eval_split!r}")
    texts, labels = read_rows(path, text_column, label_column)
    names = _sorted_labels(set(labels))
    class_id = {n: i for i, n in enumerate(names)}
    train_labels = [class_id[label] for label in labels]
    if test_path is not None and eval_split == "val":
        train, test = TextSplit(texts, train_labels), None  # the test file stays unread
    elif test_path is not None:
        test_texts, test_raw = read_rows(test_path, text_column, label_column)
        unseen = sorted(set(test_raw) - set(names))
        if unseen:
            raise ValueError(
                f"{test_path}: test has labels never seen in train ({path}): {unseen[:5]}"
            )
        train = TextSplit(texts, train_labels)
        test = TextSplit(test_texts, [class_id[label] for label in test_raw])
    else:
        train, test = stratified_split(TextSplit(texts, train_labels), float(test_fraction), seed)
        if len(test) == 0:
            raise ValueError(f"{path}: too few rows to hold out a test split; pass test_path=...")
    if eval_split == "val":
        train, test = stratified_split(train, float(val_fraction), seed)
        if len(test) == 0:
            raise ValueError(f"{path}: too few rows to hold out a validation split")
    calibration = None
    if calibration_fraction > 0:
        train, calibration = stratified_split(train, float(calibration_fraction), seed + 1)
        if len(calibration) == 0:
            raise ValueError(f"{path}: too few rows to hold out a calibration split")
    n_exp = min(5, len(names)) if num_experiences is None else num_experiences
    order = list(range(len(names))) if class_order_seed is None else class_order(len(names), class_order_seed)
    first_seen = list(dict.fromkeys(train_labels))  # class ids in order of first appearance in the file
    return TextDataset(
        train, test, names, split_classes(order, n_exp), name=dataset_name(path),
        info={"path": str(path), "test_path": None if test_path is None else str(test_path),
              "eval_split": eval_split, "file_order": first_seen},
        calibration=calibration,
    )


def write_text_csv(path: str | os.PathLike, splits: list[TextSplit], class_names: list[str], *,
                   text_column: str = "text", label_column: str = "label", overwrite: bool = False) -> Path:
    """Write the rows of ``splits`` (in order) as a CSV that :func:`load_text_file` reads back.

    Each row is a text and its class's name. An existing file is kept unless ``overwrite``.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists: pass overwrite=True to replace it")
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([text_column, label_column])
        for split in splits:
            w.writerows((t, class_names[y]) for t, y in zip(split.texts, split.labels, strict=True))
    return p


def dataset_name(path: str | os.PathLike) -> str:
    """The file's stem, or its folder's name for generic stems (``hwu64/train.csv`` -> ``hwu64``)."""
    p = Path(path)
    if p.stem.lower() in GENERIC_STEMS and p.resolve().parent.name:
        return p.resolve().parent.name
    return p.stem
