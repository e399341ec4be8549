"""benchmarks/bench_query_batches.py: the training queries in training batches or sorted ahead."""

from __future__ import annotations

import json

from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.data import synthetic_text_dataset


def test_both_ways_give_the_same_features_and_are_timed(benchmark_script, tmp_path):
    bench = benchmark_script("bench_query_batches")
    data = synthetic_text_dataset(num_classes=6, num_experiences=3, train_per_class=7, test_per_class=2)
    out = tmp_path / "q.json"
    result = bench.main(["--out", str(out), "--experiences", "2", "--batch-size", "4", "--eval-batch-size", "8",
                         "--layers", "2", "--repeats", "2"], backbone=tiny_text_backbone(), dataset=data)
    assert result["samples"] == 28  # 4 classes of 7 training sentences
    assert all(len(v) == 2 and min(v) > 0 for v in result["all_seconds"].values())
    assert result["max_abs_difference"] < 1e-5  # padding changes float rounding only
    saved = json.loads(out.read_text())
    assert saved["command"].startswith("python benchmarks/bench_query_batches.py") and saved["speedup"] > 0
