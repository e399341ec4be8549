"""Not a script: what every benchmark JSON records about how it was made, and how it is written.

    doc = {**provenance("bench_train", argv, device=args.device), "rows": rows}
    write_json(args.out, doc)

``provenance`` gives the four keys ``command``, ``machine``, ``versions`` and ``commit``;
``write_json`` writes the document atomically (a crash leaves the previous file whole).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from cl_prompts.files import atomic_write_text
from cl_prompts.results.record import versions


def command(script: str, argv: list[str] | None) -> str:
    """``python benchmarks/<script>.py <args>``; ``argv`` None: this process's arguments."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", f"benchmarks/{script.removesuffix('.py')}.py", *args])


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else ``platform.processor()`` or the architecture."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine(device: str | None = None) -> dict[str, Any]:
    """``cpu``, ``cpu_count``, ``torch_threads`` (this process's) and ``platform``; ``gpu`` (its
    name) when ``device`` is a CUDA device. The Python version is in ``versions``."""
    import torch

    out: dict[str, Any] = {"cpu": cpu_name(), "cpu_count": os.cpu_count(),
                           "torch_threads": torch.get_num_threads(), "platform": platform.platform()}
    if device is not None and str(device).startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def provenance(script: str, argv: list[str] | None, *, device: str | None = None) -> dict[str, Any]:
    """``command`` (:func:`command`), ``machine`` (:func:`machine`), ``versions``
    (``cl_prompts.results.record.versions()``) and ``commit``, the checkout's git commit
    (``source_commit()``, which ``versions`` records as ``cl_prompts_commit``; None outside a
    checkout)."""
    installed = versions()
    return {"command": command(script, argv), "machine": machine(device), "versions": installed,
            "commit": installed["cl_prompts_commit"]}


def write_json(path: str | os.PathLike, data: Any, *, indent: int = 1) -> Path:
    """Write ``data`` as indented JSON to ``path`` (its folder created), atomically; returns the path.

    NaN and infinities are refused (ValueError): they are not JSON.
    """
    path = Path(path)
    text = json.dumps(data, indent=indent, allow_nan=False) + "\n"  # before touching the disk
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path
