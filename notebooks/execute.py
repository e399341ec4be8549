"""Execute the notebooks with nbclient: ``make notebooks`` (their default settings) and the tests
(small settings injected after each notebook's ``parameters`` cell, as papermill does).

    python notebooks/execute.py                 # every notebook; executed copies in notebooks/executed/
    python notebooks/execute.py 03_inside_the_prompts.ipynb --set QUICK=True
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
EXECUTED = HERE / "executed"


def with_parameters(nb: nbformat.NotebookNode, overrides: dict[str, Any]) -> nbformat.NotebookNode:
    """A copy of ``nb`` with a cell assigning ``overrides`` right after its ``parameters`` cell."""
    nb = nbformat.from_dict(nb)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"a notebook needs exactly one cell tagged 'parameters', found {len(tagged)}")
    if overrides:
        source = "\n".join(f"{k} = {v!r}" for k, v in overrides.items())
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
        cell["id"] = "injected-parameters"
        nb.cells.insert(tagged[0] + 1, cell)
    return nb


def execute(path: Path, overrides: dict[str, Any] | None = None, *, cwd: Path | None = None,
            timeout: int = 1200) -> tuple[nbformat.NotebookNode, float]:
    """Run every cell in a fresh python3 kernel (working folder ``cwd``); returns the notebook and seconds."""
    nb = with_parameters(nbformat.read(path, as_version=4), overrides or {})
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd or path.parent)}}).execute()
    return nb, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a parameter (a Python literal), e.g. --set QUICK=True")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name.strip()] = ast.literal_eval(value)
    paths = [HERE / n for n in args.notebooks] or sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    EXECUTED.mkdir(exist_ok=True)
    for path in paths:
        nb, seconds = execute(path, overrides, cwd=EXECUTED)
        nbformat.write(nb, EXECUTED / path.name)
        print(f"{path.name}: {seconds:.0f} s -> {EXECUTED / path.name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
