"""The text benchmarks the headline and the tuning script run: one RunConfig each.

    clinc150  CLINC150-10: 150 intents, one experience per domain (its own val split)
    hwu64     HWU64: 64 intents, sorted labels (grouped by scenario) in 8 experiences,
              its own test file; validation = a stratified 10% of its train rows
Data are looked up under ``--data-root`` (default $CL_PROMPTS_DATA, else ../shared/data).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from cl_prompts.data import ENV_VAR

SUITES = ("clinc150", "hwu64")


def data_root(root: str | None = None) -> Path:
    if root:
        return Path(root)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def suite_options(name: str, root: str | None = None) -> dict[str, Any]:
    """RunConfig fields of benchmark ``name`` (see the module docstring)."""
    base = data_root(root)
    if name == "clinc150":
        return {"benchmark": "clinc150", "data_root": str(base)}
    if name == "hwu64":
        return {"benchmark": f"file:{base / 'hwu64' / 'train.csv'}",
                "test_file": str(base / "hwu64" / "test.csv"), "experiences": 8}
    raise ValueError(f"unknown benchmark {name!r}; valid: {list(SUITES)}")


def suite_parser(doc: str | None, backbone: str = "minilm") -> argparse.ArgumentParser:
    """A script's parser with ``--benchmarks`` (the suites), ``--data-root`` and ``--backbone``."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmarks", nargs="+", default=list(SUITES), choices=SUITES)
    p.add_argument("--data-root", help="folder with clinc150/ and hwu64/ (default $CL_PROMPTS_DATA, else ../shared/data)")
    p.add_argument("--backbone", default=backbone)
    return p
