"""Markdown table across runs: mean +- std over seeds, one row per (benchmark, method, setup)."""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cl_prompts.results.record import REQUIRED_KEYS, RESULTS_FILE
from cl_prompts.safe_io import markdown_cell, read_json, require

# Config keys that do not define the experiment (they differ between seeds or runs of it,
# or only change what is printed).
_RUN_ONLY_KEYS = {"seed", "out", "resume", "overwrite", "device", "progress", "plots", "checkpoint_every", "log",
                  "trust_remote_code", "calibrate"}

COLUMNS = (
    ("final_average_accuracy", "final avg acc (%)"),
    ("average_forgetting", "forgetting (pts)"),
    ("backward_transfer", "BWT (pts)"),
    ("train_seconds", "train time (s)"),
    ("final_task_id_accuracy", "task-id acc (%)"),
)


def find_results(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every ``results.json`` given directly or found (recursively) under the given folders.

    A folder without one (a run not finished, or stopped) is skipped with a warning;
    ``FileNotFoundError`` when nothing at all is found.
    """
    found: list[Path] = []
    skipped: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            hits = sorted(p.rglob(RESULTS_FILE))
            if not hits:
                skipped.append(p)
            found.extend(hits)
        else:
            raise FileNotFoundError(f"run folder or results file not found: {p}")
    if not found:
        raise FileNotFoundError(f"no {RESULTS_FILE} under {', '.join(map(str, skipped))}")
    for p in skipped:
        warnings.warn(f"skipping {p}: no {RESULTS_FILE} (an unfinished or stopped run)",
                      UserWarning, stacklevel=2)
    return found


def mean_std(values: Sequence[float | None]) -> str:
    """``"mean ± std"`` (sample std, ddof=1) over the non-missing values; ``"-"`` when none."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.1f}"
    return f"{np.mean(xs):.1f} ± {np.std(xs, ddof=1):.1f}"


def backbone_label(result: dict[str, Any]) -> str:
    """The run's backbone, with its query encoder where it had one (``smollm2 (query: minilm)``)."""
    query = result.get("config", {}).get("query_encoder")
    return f"{result['backbone']} (query: {query})" if query else result["backbone"]


def _setup_key(result: dict[str, Any]) -> str:
    config = {k: v for k, v in result.get("config", {}).items() if k not in _RUN_ONLY_KEYS}
    ident = (result["benchmark"], result["method"], result["backbone"], result["num_experiences"])
    return json.dumps([ident, config], sort_keys=True, default=str)


def group_runs(results: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group results that differ only by seed (and run-only options), in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(_setup_key(r), []).append(r)
    return list(groups.values())


def _label(group: list[dict[str, Any]], all_groups: list[list[dict[str, Any]]]) -> str:
    """The method name, plus the config keys that tell it apart from same-method groups."""
    first = group[0]
    label = first["method"]
    siblings = [g[0] for g in all_groups if g[0]["method"] == first["method"] and g is not group]
    if siblings:
        mine = {k: v for k, v in first.get("config", {}).items() if k not in _RUN_ONLY_KEYS}
        diffs = sorted(
            k for k, v in mine.items() if any(s.get("config", {}).get(k) != v for s in siblings)
        )
        if diffs:
            label += " (" + ", ".join(f"{k}={mine[k]}" for k in diffs) + ")"
    return label


def compare_table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown table: one row per setup, mean ± std over its seeds for each metric."""
    if not results:
        raise ValueError("results must hold at least one run, got none")
    groups = group_runs(results)
    header = ["method", "benchmark", "backbone", "seeds"] + [title for _, title in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group in groups:
        first = group[0]
        seeds = ",".join(str(r["seed"]) for r in group)
        cells = [_label(group, groups), first["benchmark"], backbone_label(first), seeds]
        cells += [mean_std([_number(r.get(key)) for r in group]) for key, _ in COLUMNS]
        # the strings come from results files: no pipe, newline or terminal escape reaches the table
        lines.append("| " + " | ".join(markdown_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def load_results(path: Path) -> dict[str, Any]:
    """A results file read as untrusted: bounded, a JSON object with the keys and types the table uses."""
    data = read_json(path, "results file")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"results file {path} is missing required keys: {missing}")
    for key in ("benchmark", "method", "backbone"):
        require(data[key], str, f"results file {path}: {key}")
    require(data["seed"], int, f"results file {path}: seed")
    require(data.get("config", {}), dict, f"results file {path}: config")
    return data


def compare_dirs(paths: Iterable[str | os.PathLike]) -> str:
    """:func:`compare_table` over every results file found in ``paths``."""
    return compare_table([load_results(p) for p in find_results(paths)])
