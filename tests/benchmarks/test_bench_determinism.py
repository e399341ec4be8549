"""benchmarks/bench_determinism.py: times both MKL settings and checks the strict one's bits."""

from __future__ import annotations

import json


def test_bench_determinism_writes_both_settings(tmp_path, benchmark_script):
    module = benchmark_script("bench_determinism")
    out = tmp_path / "d.json"
    doc = module.main(["--backbone", "tiny-bert", "--threads", "1", "--steps", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == doc
    assert [r["mkl_cbwr"] for r in doc["rows"]] == ["default", "AUTO,STRICT"]
    assert all(r["median_ms"] > 0 and len(r["grad_sha"]) == 16 for r in doc["rows"])
    # the cross-thread check itself is meaningful with several thread counts; the real-model
    # test of it is tests/test_runner_reproducibility.py
