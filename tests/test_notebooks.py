"""notebooks/*.ipynb: valid nbformat-4 JSON that compiles (fast), and the quickstart runs (slow).

The slow test executes the code cells in order in one namespace with ``exec``, so it
needs neither Jupyter nor nbformat, only what the package already installs.
"""

import json
from pathlib import Path

import numpy as np
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
QUICKSTART = NOTEBOOKS / "quickstart.ipynb"


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def test_quickstart_exists():
    assert QUICKSTART.is_file(), QUICKSTART


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_is_valid_and_clean(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and isinstance(nb["nbformat_minor"], int)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["metadata"]["kernelspec"]["language"] == "python"
    cells = nb["cells"]
    assert {c["cell_type"] for c in cells} <= {"code", "markdown", "raw"}
    ids = [c["id"] for c in cells if "id" in c]
    assert len(ids) == len(set(ids)), "cell ids must be unique"
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and any(c["cell_type"] == "markdown" for c in cells)
    for i, cell in enumerate(code):
        # stored outputs make diffs noisy and can go stale: the notebook is committed clean
        assert cell["outputs"] == [] and cell["execution_count"] is None, f"code cell {i} has outputs"
        assert isinstance(cell["metadata"], dict)
        compile(_source(cell), f"{path.name}[code cell {i}]", "exec")  # SyntaxError fails the test


def test_quickstart_starts_with_parameters():
    first = next(c for c in _cells(QUICKSTART) if c["cell_type"] == "code")
    params: dict = {}
    exec(compile(_source(first), "parameters", "exec"), params)  # plain assignments, no imports
    assert params["QUICK"] is True and params["EXPERIENCES"] == 3
    assert params["METHOD"] == "growing_pool"


@pytest.mark.slow
def test_quickstart_runs(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg", force=True)  # before the notebook imports pyplot: no display needed
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)  # anything the notebook might write lands here
    ns: dict = {"__name__": "__main__"}
    for i, cell in enumerate(c for c in _cells(QUICKSTART) if c["cell_type"] == "code"):
        exec(compile(_source(cell), f"quickstart.ipynb[code cell {i}]", "exec"), ns)
    plt.close("all")

    n = ns["EXPERIENCES"]
    acc = ns["acc"]  # percent, NaN above the diagonal
    assert acc.shape == (n, n)
    lower = acc[np.tril_indices(n)]  # trained experiences only
    assert np.isnan(acc[np.triu_indices(n, k=1)]).all()
    assert ((lower >= 0.0) & (lower <= 100.0)).all(), acc
    # chance is 1/15 among one domain's intents and 1/45 over three domains; MiniLM + one
    # epoch on 10 sentences per intent reaches ~75-87% on every domain (seed 0)
    assert lower.min() > 50.0, acc
    assert ns["summary"]["final_average_accuracy"] > 60.0, acc
    # task identification with one key per intent is far easier than the intents themselves
    assert ns["task_confusion"].shape == (n, n)
    assert min(ns["task_acc"]) > 85.0, ns["task_acc"]
    # the example sentence is a credit-card one: routed to that domain, its intent picked
    domains = ns["domains"]
    assert domains[ns["picked_task"]] == "credit_cards"
    assert ns["data"].class_names[ns["predicted"]] == "card_declined"
    assert ns["method"].current_experience == n - 1
