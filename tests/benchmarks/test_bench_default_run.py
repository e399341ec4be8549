"""benchmarks/bench_default_run.py: the default run's time, phase by phase."""

from __future__ import annotations

import json

import pytest

from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.data import synthetic_text_dataset
from cl_prompts.methods import get_method_class
from cl_prompts.results import read_results

TINY = ["projection_dim=64", "ridge=1.0", "prompted_ridge=1.0", "prompt_length=2"]


@pytest.fixture(scope="module")
def bench(benchmark_script):
    return benchmark_script("bench_default_run")


def test_phases_add_up_to_the_run_and_the_accuracy_is_the_run_s(bench, tmp_path):
    data = synthetic_text_dataset(num_classes=6, num_experiences=3, train_per_class=6, test_per_class=3)
    out = tmp_path / "default_run.json"
    result = bench.main(["--out", str(out), "--set", *TINY], backbone=tiny_text_backbone(), dataset=data)
    s = result["seconds"]
    assert {"loading", "tokenization", "frozen_query_passes", "training", "end_of_experience",
            "evaluation", "key_search", "ridge_solves", "checkpoints", "wall"} <= set(s)
    assert s["checkpoints"] > 0 and result["checkpoints_written"] == 3  # tiny checkpoints: after every experience
    assert 0 < s["ridge_solves"] <= s["end_of_experience"]
    assert result["key_search"]["backend"] in ("faiss", "torch") and result["key_search"]["keys"] == 6
    assert all(v >= 0 for v in s.values()) and s["end_of_experience"] > 0
    run = read_results(tmp_path / "default_run-run")
    assert result["final_average_accuracy"] == run["final_average_accuracy"]
    assert s["training"] + s["end_of_experience"] == pytest.approx(run["train_seconds"], abs=0.15)
    assert s["wall"] >= s["loading"] + s["tokenization"] + s["training"] + s["evaluation"] - 0.3
    assert result["method"] == "growing_pool" and result["method_config"]["prompt_length"] == 2
    saved = json.loads(out.read_text())
    assert saved["command"].startswith("python benchmarks/bench_default_run.py") and saved["seconds"] == s
    last_only = bench.main(["--out", str(tmp_path / "sparse.json"), "--set", *TINY, "--checkpoint-every", "1e9"],
                           backbone=tiny_text_backbone(), dataset=data)
    assert last_only["checkpoints_written"] == 1 and last_only["accuracy_matrix"] == result["accuracy_matrix"]


def test_timing_leaves_the_timed_functions_as_they_were(bench):
    cls = get_method_class("growing_pool")
    inherited = "end_experience" not in vars(cls)
    before = cls.end_experience
    seconds = {}
    with bench.timed(cls, "end_experience", seconds, "x"):
        assert cls.end_experience is not before
    assert cls.end_experience is before and ("end_experience" not in vars(cls)) == inherited


def test_set_reads_json_values(bench):
    assert bench.parse_set(["prompt_length=8", "head=linear", "x=true"]) == {"prompt_length": 8, "head": "linear",
                                                                             "x": True}
    with pytest.raises(SystemExit, match="key=value"):
        bench.parse_set(["prompt_length"])


def test_the_evaluation_cache_can_be_switched_off_and_is_restored(bench, tmp_path):
    from cl_prompts.methods.growing_pool import model

    data = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=4, test_per_class=2)
    before = model.EVAL_FEATURE_BYTES
    cached = bench.main(["--out", str(tmp_path / "a.json"), "--set", *TINY], backbone=tiny_text_backbone(),
                        dataset=data)
    off = bench.main(["--out", str(tmp_path / "b.json"), "--eval-cache-mb", "0", "--set", *TINY],
                     backbone=tiny_text_backbone(), dataset=data)
    assert model.EVAL_FEATURE_BYTES == before
    assert cached["eval_cache_bytes"] == before and off["eval_cache_bytes"] == 0
    assert off["final_average_accuracy"] == cached["final_average_accuracy"]  # a cache changes no number
