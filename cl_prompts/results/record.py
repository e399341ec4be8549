"""The results JSON of one run: build, write, read.

``REQUIRED_KEYS`` are in every file; the runner adds the rest. What each key means:
docs/runner.md, "results.json"; the layering around it: docs/design.md.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from cl_prompts.files import atomic_write_text
from cl_prompts.results.metrics import as_matrix, summarize

RESULTS_FILE = "results.json"

REQUIRED_KEYS = (
    "benchmark",
    "method",
    "backbone",
    "seed",
    "num_experiences",
    "accuracy_matrix",
    "final_average_accuracy",
    "average_forgetting",
    "backward_transfer",
    "train_seconds",
    "train_samples_per_second",
    "eval_seconds",
    "peak_memory_mb",
    "versions",
    "config",
)

# Keys that change from one identical run to the next (wall clock, memory, machine).
TIMING_KEYS = (
    "train_seconds",
    "train_samples_per_second",
    "eval_seconds",
    "peak_memory_mb",
    "experience_train_seconds",
    "experience_eval_seconds",
    "created_unix",
)

_DISTRIBUTIONS = {
    "torch": ("torch",),
    "transformers": ("transformers",),
    "avalanche": ("avalanche-lib",),
    "faiss": ("faiss-cpu", "faiss-gpu", "faiss"),
    "numpy": ("numpy",),
    "cl_prompts": ("cl_prompts", "cl-prompts"),
}


def versions() -> dict[str, str | None]:
    """Installed versions (python, torch, transformers, avalanche, faiss, numpy, cl_prompts) and
    ``cl_prompts_commit`` (:func:`source_commit`).

    Read from package metadata, so nothing heavy is imported; ``None`` when not installed.
    """
    out: dict[str, str | None] = {"python": platform.python_version()}
    for key, dists in _DISTRIBUTIONS.items():
        out[key] = None
        for dist in dists:
            try:
                out[key] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    out["cl_prompts_commit"] = source_commit()
    return out


# Figures the benchmarks write into the checkout: rewriting them leaves the code as committed.
RESULTS_PATHSPEC = ":(exclude)benchmarks/results"


def source_commit(root: str | Path | None = None) -> str | None:
    """The git commit of the cl_prompts checkout that runs (or of ``root``), ``+dirty`` with
    uncommitted changes to tracked files other than the benchmark figures under
    ``benchmarks/results``; None for an installed package (no checkout) or without git."""
    root = Path(__file__).resolve().parents[2] if root is None else Path(root)
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no",
                                "--", ".", RESULTS_PATHSPEC],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def peak_memory_mb(device: str = "cpu") -> tuple[float, str]:
    """Peak memory of this run in MiB and where it was measured.

    On CUDA: ``torch.cuda.max_memory_allocated`` (tensors only); the source says so.
    On CPU: the process's maximum resident set size (``getrusage``), which includes
    the Python interpreter and the libraries, not only tensors.
    """
    if str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_memory_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    mib = rss / 2**20 if sys.platform == "darwin" else rss / 1024
    return float(mib), "process_max_rss"


def build_results(
    *,
    benchmark: str,
    method: str,
    backbone: str,
    seed: int,
    accuracy_matrix: list[list[float | None]],
    train_seconds: float,
    train_samples: int,
    eval_seconds: float,
    config: dict[str, Any],
    device: str = "cpu",
    extra: dict[str, Any] | None = None,
    forgetting_matrix: list[list[float | None]] | None = None,
) -> dict[str, Any]:
    """Assemble the results dict: metrics from ``accuracy_matrix`` plus timings and versions.

    ``accuracy_matrix``: ``(T, T)`` percentages, ``None`` for experiences not trained yet.
    ``extra`` keys (e.g. task-identification accuracy) are added as they are.
    ``forgetting_matrix``: where the rows of ``accuracy_matrix`` scored different samples
    (``RunConfig.eval_subsample``), the same rows on the samples every row scored; the
    forgetting and backward transfer are then computed from it.
    """
    as_matrix(accuracy_matrix)  # validates
    forgetting = {} if forgetting_matrix is None else {
        k: v for k, v in summarize(forgetting_matrix).items()
        if k in ("average_forgetting", "backward_transfer", "forgetting_per_experience")}
    if train_seconds < 0 or eval_seconds < 0:
        raise ValueError(
            f"train_seconds and eval_seconds must be >= 0, got {train_seconds}, {eval_seconds}"
        )
    memory, memory_source = peak_memory_mb(device)
    results: dict[str, Any] = {
        "benchmark": benchmark,
        "method": method,
        "backbone": backbone,
        "seed": int(seed),
        "num_experiences": len(accuracy_matrix),
        "accuracy_matrix": [[None if v is None else float(v) for v in r] for r in accuracy_matrix],
        **summarize(accuracy_matrix),
        **forgetting,
        "train_seconds": float(train_seconds),
        "train_samples_per_second": float(train_samples / train_seconds) if train_seconds > 0 else 0.0,
        "eval_seconds": float(eval_seconds),
        "peak_memory_mb": round(memory, 1),
        "peak_memory_source": memory_source,
        "device": device,
        "forgetting_definition": (
            "mean over old experiences j < T-1 of (best accuracy on j after training "
            "experiences j..T-2) minus (final accuracy on j)"
            + ("; every term on the per-class test subsample of eval_subsample" if forgetting_matrix else "")
        ),
        "versions": versions(),
        "config": config,
    }
    if extra:
        results.update(extra)
    return results


def _clean(value: Any) -> Any:
    """Recursively turn NaN/inf into None so the JSON is standard (no NaN tokens)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_results(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``results`` as JSON to ``path`` (a file, or a folder -> ``folder/results.json``)."""
    missing = [k for k in REQUIRED_KEYS if k not in results]
    if missing:
        raise ValueError(f"results is missing required keys: {missing}")
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(_clean(results), indent=2, allow_nan=False) + "\n")
    return path


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a results JSON (a file, or a run folder holding ``results.json``) and check its keys."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"results file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"results file {path} must hold a JSON object, got {type(data).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"results file {path} is missing required keys: {missing}")
    return data


def strip_timings(results: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``results`` without the keys that vary between identical runs (for comparisons)."""
    out = {k: v for k, v in results.items() if k not in TIMING_KEYS}
    return out
