"""benchmarks/choose_from_runs.py: one option chosen from finished validation runs."""

from __future__ import annotations

import json

import pytest


def write_run(folder, name, *, passes, benchmark, seed, acc, split="val", precision="fp32", lr=0.01):
    run = {"method": "growing_pool", "benchmark": benchmark, "seed": seed, "eval_split": split,
           "precision": precision, "final_average_accuracy": acc,
           "method_config": {"cross_task_passes": passes, "lr": lr}}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(run))
    return str(path)


@pytest.fixture
def runs(tmp_path):
    return [
        write_run(tmp_path, "a1", passes=1, benchmark="clinc150", seed=0, acc=97.0),
        write_run(tmp_path, "a2", passes=2, benchmark="clinc150", seed=0, acc=97.4),
        write_run(tmp_path, "b1", passes=1, benchmark="hwu64", seed=0, acc=93.0),
        write_run(tmp_path, "b2", passes=2, benchmark="hwu64", seed=0, acc=92.0),
        write_run(tmp_path, "c1", passes=1, benchmark="hwu64", seed=1, acc=92.0),  # only one value: not compared
        write_run(tmp_path, "test", passes=2, benchmark="hwu64", seed=1, acc=99.0, split="test"),
        write_run(tmp_path, "bf16", passes=2, benchmark="hwu64", seed=1, acc=99.0, precision="bf16"),
    ]


def test_the_best_mean_over_shared_pairs_wins_and_extends_the_earlier_choice(benchmark_script, runs, tmp_path):
    choose = benchmark_script("choose_from_runs")
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"chosen": {"growing_pool": {"options": {"cross_task_passes": 2, "ridge": 100.0}}}}))
    out = tmp_path / "tune" / "tune.json"
    choose.main(["--method", "growing_pool", "--option", "cross_task_passes", "--runs", *runs,
                 "--keep-options-of", str(earlier), "--out", str(out)])
    doc = json.loads(out.read_text())
    assert doc["pairs"] == [["clinc150", 0], ["hwu64", 0]]  # hwu64 seed 1 has one value only; test and bf16 left out
    assert doc["scores"]["1"]["mean_val_accuracy"] == pytest.approx(95.0)
    assert doc["scores"]["2"]["mean_val_accuracy"] == pytest.approx(94.7)
    chosen = doc["chosen"]["growing_pool"]
    assert chosen["options"] == {"cross_task_passes": 1, "ridge": 100.0}
    assert chosen["val_accuracy"] == {"clinc150": 97.0, "hwu64": 93.0}


def test_refuses_runs_that_differ_in_another_option_and_an_existing_output(benchmark_script, runs, tmp_path):
    choose = benchmark_script("choose_from_runs")
    other = write_run(tmp_path, "lr", passes=1, benchmark="clinc150", seed=1, acc=90.0, lr=0.1)
    with pytest.raises(SystemExit, match="differ in more than 'cross_task_passes'"):
        choose.main(["--method", "growing_pool", "--option", "cross_task_passes", "--runs", *runs, other,
                     "--out", str(tmp_path / "x.json")])
    taken = tmp_path / "taken.json"
    taken.write_text("{}")
    with pytest.raises(SystemExit, match="exists"):
        choose.main(["--method", "growing_pool", "--option", "cross_task_passes", "--runs", *runs,
                     "--out", str(taken)])
    assert taken.read_text() == "{}"
