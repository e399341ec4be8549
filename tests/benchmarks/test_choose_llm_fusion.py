"""benchmarks/choose_llm_fusion.py: a causal LM growing_pool's prediction options, from several validation grids."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def choose(benchmark_script):
    return benchmark_script("choose_llm_fusion")


def _grid(path, accuracies):
    rows = [{"candidates": m, "route_weight": w, "val_accuracy": a} for (m, w), a in accuracies.items()]
    path.write_text(json.dumps({"grid": rows}))
    return str(path)


def test_the_pair_with_the_best_mean_over_the_grids_wins_ties_going_to_the_cheaper(choose, tmp_path):
    a = _grid(tmp_path / "a.json", {(1, 10.0): 90.0, (2, 10.0): 80.0, (2, 30.0): 88.0, (1, "inf"): 91.0, (2, "inf"): 91.0})
    b = _grid(tmp_path / "b.json", {(1, 10.0): 70.0, (2, 10.0): 96.0, (2, 30.0): 95.0, (1, "inf"): 90.0, (2, "inf"): 90.0})
    out = choose.main([a, b, "--out", str(tmp_path / "chosen.json")])
    doc = json.loads(out.read_text())
    means = {(r["candidates"], r["route_weight"]): r["mean_val_accuracy"] for r in doc["pairs"]}
    assert means[(2, 30.0)] == pytest.approx(91.5) and means[(1, 10.0)] == pytest.approx(80.0)
    assert doc["chosen"] == {"candidates": 2, "route_weight": 30.0, "mean_val_accuracy": pytest.approx(91.5)}
    # the routing alone ties at every number of candidates: the fewest is named
    tie = choose.main([_grid(tmp_path / "c.json", {(1, "inf"): 91.0, (2, "inf"): 91.0, (2, 30.0): 90.0}),
                       "--out", str(tmp_path / "tie.json")])
    assert json.loads(tie.read_text())["chosen"]["candidates"] == 1
    assert doc["command"].startswith("python benchmarks/choose_llm_fusion.py")


def test_grids_of_other_pairs_are_refused_naming_the_grid(choose, tmp_path):
    a = _grid(tmp_path / "a.json", {(1, 10.0): 90.0, (2, 10.0): 80.0})
    b = _grid(tmp_path / "b.json", {(1, 10.0): 90.0})
    with pytest.raises(SystemExit, match="b.json scores other pairs"):
        choose.main([a, b, "--out", str(tmp_path / "x.json")])
