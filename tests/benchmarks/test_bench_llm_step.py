"""benchmarks/bench_llm_step.py: a causal LM's step and scoring against their floors."""

from __future__ import annotations

import json


def test_every_case_is_timed_and_compared_with_its_floor(tmp_path, benchmark_script, monkeypatch):
    module = benchmark_script("bench_llm_step")
    out = tmp_path / "step.json"
    doc = module.main(["--backbone", "tiny-llama", "--benchmark", "hwu64", "--batch-size", "4", "--prompt-length", "2",
                       "--answers", "3", "--repeats", "2", "--out", str(out)])
    assert json.loads(out.read_text()) == doc
    rows = doc["rows"]
    assert set(rows) == {"floor_forward", "scoring", "scoring_full_passes", "floor_train", "train_answer", "train_rank"}
    assert all(r["samples_per_second"] > 0 and len(r["runs"]) == 2 for r in rows.values())
    assert rows["train_rank"]["floor"] == "floor_train" and rows["scoring"]["floor"] == "floor_forward"
    ratio = rows["floor_forward"]["samples_per_second"] / rows["scoring"]["samples_per_second"]
    assert abs(rows["scoring"]["floor_over_this"] - ratio) < 0.01
    assert doc["answers"] == 3 and doc["batch_size"] == 4 and doc["command"].startswith("python benchmarks/bench_llm_step.py")
