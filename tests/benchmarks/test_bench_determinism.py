"""benchmarks/bench_determinism.py: times both MKL settings and checks the strict one's bits."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_determinism.py"


def test_bench_determinism_writes_both_settings(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_determinism", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "d.json"
    doc = module.main(["--backbone", "tiny-bert", "--threads", "1", "--steps", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == doc
    assert [r["mkl_cbwr"] for r in doc["rows"]] == ["default", "AUTO,STRICT"]
    assert all(r["median_ms"] > 0 and len(r["grad_sha"]) == 16 for r in doc["rows"])
    # the cross-thread check itself is meaningful with several thread counts; the real-model
    # test of it is tests/test_runner_reproducibility.py
