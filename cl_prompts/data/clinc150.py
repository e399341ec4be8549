"""CLINC150-10: the class-incremental intent benchmark (one experience per domain)."""

from __future__ import annotations

import os
from pathlib import Path

from cl_prompts.data.types import TextDataset, TextSplit
from cl_prompts.safe_io import MAX_DATA_BYTES, read_json

ENV_VAR = "CL_PROMPTS_DATA"
_FILES = ("data_full.json", "domains.json")
EVAL_SPLITS = ("test", "val")


def candidate_roots(root: str | os.PathLike | None = None, name: str = "clinc150") -> list[Path]:
    """The folders looked in for data set ``name``, in order: ``root`` alone when given, else
    ``$CL_PROMPTS_DATA/<name>``, then ``<repo>/../shared/data/<name>``."""
    if root is not None:
        return [Path(root)]
    roots = []
    if os.environ.get(ENV_VAR):
        roots.append(Path(os.environ[ENV_VAR]) / name)
    # <repo root>/../shared/data/<name>: the layout of a source checkout.
    roots.append(Path(__file__).resolve().parents[2].parent / "shared" / "data" / name)
    return roots


def find_data_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """The first existing folder of :func:`candidate_roots` for ``name`` (e.g. ``"hwu64"``)."""
    tried = candidate_roots(root, name)
    for path in tried:
        if path.is_dir():
            return path
    raise FileNotFoundError(f"{name} not found: looked in {', '.join(str(p) for p in tried)}. "
                            f"Pass root=... or set ${ENV_VAR} to a folder containing {name}/.")


def find_clinc150(root: str | os.PathLike | None = None) -> Path:
    """The first candidate folder holding both CLINC150 files.

    Raises:
        FileNotFoundError: naming every path tried and the environment variable.
    """
    tried = candidate_roots(root)
    for path in tried:
        if all((path / f).is_file() for f in _FILES):
            return path
    listed = ", ".join(str(p) for p in tried)
    raise FileNotFoundError(
        f"CLINC150 not found: looked for {' and '.join(_FILES)} in {listed}. "
        f"Pass root=... or set ${ENV_VAR} to a folder containing clinc150/."
    )


def load_clinc150(
    root: str | os.PathLike | None = None,
    *,
    num_experiences: int | None = None,
    class_order_seed: int | None = None,
    per_class: int | None = None,
    test_per_class: int | None = None,
    subset_seed: int = 0,
    eval_split: str = "test",
) -> TextDataset:
    """Load CLINC150 (in-scope intents) as the CLINC150-10 class-incremental dataset.

    Class ids follow ``domains.json``: the 15 intents of the first domain are
    ``0..14``, and so on, so the default experiences are the 10 domains in order.

    Args:
        root: folder with ``data_full.json`` and ``domains.json``; default
            ``$CL_PROMPTS_DATA/clinc150``, else ``<repo>/../shared/data/clinc150``.
        num_experiences: regroup the class order into this many experiences.
        class_order_seed: a seeded random class order instead of the domain order.
        per_class: keep at most this many train samples per class (a quick run);
            ``None`` keeps everything.
        test_per_class: the same for the test samples.
        subset_seed: seed of that subsampling.
        eval_split: ``"test"`` (4,500) or ``"val"`` (3,000): which list becomes the
            dataset's evaluation split. With ``"val"`` the test list is never read into
            the dataset (choose settings on it, report on ``"test"``).

    Returns:
        TextDataset with train (15,000) / test (4,500) splits, 150 class names
        and the experiences.
    """
    path = find_clinc150(root)  # --data-root may come from a config file: regular, bounded files
    domains: dict[str, list[str]] = read_json(path / "domains.json", "CLINC150 file", max_bytes=MAX_DATA_BYTES)
    full = read_json(path / "data_full.json", "CLINC150 file", max_bytes=MAX_DATA_BYTES)

    class_names = [intent for intents in domains.values() for intent in intents]
    class_id = {name: i for i, name in enumerate(class_names)}
    if len(class_id) != len(class_names):
        raise ValueError(f"{path / 'domains.json'}: an intent is listed under two domains")
    if eval_split not in EVAL_SPLITS:
        raise ValueError(f"eval_split must be one of {list(EVAL_SPLITS)}, got {eval_split!r}")
    splits = {}
    # with test as the evaluation split, val (never trained on) calibrates out-of-scope rejection
    held_out = ("val",) if eval_split == "test" else ()
    for split in ("train", eval_split, *held_out):
        texts, labels = [], []
        for text, intent in full[split]:
            if intent not in class_id:
                raise ValueError(f"{path / 'data_full.json'}: intent {intent!r} not in domains.json")
            texts.append(text)
            labels.append(class_id[intent])
        splits[split] = TextSplit(texts, labels)

    experiences, start = [], 0
    for intents in domains.values():
        experiences.append(list(range(start, start + len(intents))))
        start += len(intents)
    ds = TextDataset(
        splits["train"], splits[eval_split], class_names, experiences, name="clinc150",
        info={"root": str(path), "domains": list(domains), "experience_names": list(domains),
              "eval_split": eval_split},
        calibration=splits.get("val") if held_out else None,
    )
    if num_experiences is not None or class_order_seed is not None:
        ds = ds.regroup(num_experiences, class_order_seed)
    if per_class is not None or test_per_class is not None:
        ds = ds.subset(per_class or max(len(ds.train), 1), seed=subset_seed, test_per_class=test_per_class)
    return ds


def load_clinc150_out_of_scope(root: str | os.PathLike | None = None, split: str = "test") -> list[str]:
    """CLINC150's out-of-scope sentences (label ``oos``) of ``split``: train 100, val 100, test 1,000."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    path = find_clinc150(root)
    rows = read_json(path / "data_full.json", "CLINC150 file", max_bytes=MAX_DATA_BYTES)[f"oos_{split}"]
    return [text for text, _ in rows]
