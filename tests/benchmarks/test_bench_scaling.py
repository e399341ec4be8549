"""benchmarks/bench_scaling.py on the tiny backbone: 1 and 2 gloo processes, speed-up from the rows."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow  # four torchrun launches (~30 s); the distributed runner itself is tested in the default suite
def test_bench_scaling_runs_each_process_count_and_reports_speedup(tmp_path, benchmark_script):
    out = tmp_path / "scaling.json"
    doc = benchmark_script("bench_scaling").main(["--systems", "tiny", "--procs", "1", "2", "--repeats", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))
    rows = doc["systems"]["tiny"]
    assert set(rows) == {1, 2}
    assert rows[1]["speedup"] == 1.0 and rows[1]["efficiency"] == 1.0
    assert rows[2]["runs"][0]["world_sizes"] == [2] and rows[1]["runs"][0]["world_sizes"] == [1]
    assert rows[2]["speedup"] == pytest.approx(rows[2]["train_samples_per_s"] / rows[1]["train_samples_per_s"], abs=1e-3)
    assert rows[2]["efficiency"] == pytest.approx(rows[2]["speedup"] / 2, abs=1e-3)
    # the same global batches: the two runs end with the same accuracy
    assert rows[1]["final_average_accuracy"] == pytest.approx(rows[2]["final_average_accuracy"], abs=1e-6)
