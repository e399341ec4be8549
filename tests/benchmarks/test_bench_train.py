"""benchmarks/bench_train.py on the tiny ViT: every system in its own process, ratios from its rows."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest


def _workers_in_this_process(module, monkeypatch) -> list[list[str]]:
    """The script's worker commands run in this process (a process start and the imports of
    torch, transformers and avalanche cost seconds each); returns the commands. The real
    worker processes are started by test_a_failing_system_is_reported_with_its_error."""
    commands = []

    def run(cmd, capture_output, text, cwd):
        assert cmd[:2] == [sys.executable, module.__file__] and capture_output and text
        commands.append(cmd[2:])
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            module.main(cmd[2:])
        return subprocess.CompletedProcess(cmd, 0, printed.getvalue(), "")

    monkeypatch.setattr(module, "subprocess", SimpleNamespace(run=run))
    return commands


def test_bench_train_writes_rows_and_ratios(tmp_path, benchmark_script, monkeypatch):
    out = tmp_path / "speed.json"
    module = benchmark_script("bench_train")
    commands = _workers_in_this_process(module, monkeypatch)
    doc = module.main([
        "--tiny", "--images", "8", "--batch-size", "4", "--epochs", "2", "--threads", "1",
        "--precisions", "bf16", "--out", str(out)])
    assert json.loads(out.read_text()) == doc
    rows = {(r["system"], r["precision"]): r for r in doc["rows"]}
    # no peer: its head only fits width 768
    assert set(rows) == {("ours", "bf16"), ("floor", "bf16"), ("floor_two_pass", "fp32")}
    for r in rows.values():
        assert len(r["epoch_seconds"]) == 2 and r["peak_memory_mb"] > 0
        assert r["train_samples_per_s"] == pytest.approx(8 * 2 / sum(r["epoch_seconds"]))
        assert r["later_epochs_samples_per_s"] == pytest.approx(8 / r["epoch_seconds"][1])
    ours, floor = rows[("ours", "bf16")], rows[("floor", "bf16")]
    assert doc["ratios"]["ours_bf16_over_floor"]["eval_samples_per_s"] == pytest.approx(
        ours["eval_samples_per_s"] / floor["eval_samples_per_s"])
    assert doc["setting"]["vit"] == "tiny" and doc["command"].startswith("python benchmarks/bench_train.py --tiny")
    assert sorted(c[-1] for c in commands) == ["floor:bf16", "floor_two_pass:fp32", "ours:bf16"]  # one worker each


def test_a_failing_system_is_reported_with_its_error(tmp_path, benchmark_script):
    # a real worker process: the script started as a subprocess of its own
    with pytest.raises(RuntimeError, match=r"ours \(fp32\) failed:[\s\S]*index"):
        benchmark_script("bench_train").main([
            "--tiny", "--images", "4", "--batch-size", "4", "--epochs", "1", "--threads", "1",
            "--precisions", "fp32", "--index", "NoSuchIndex", "--out", str(tmp_path / "x.json")])


def test_repeats_are_summarised_by_their_median(benchmark_script):
    module = benchmark_script("bench_train")
    tries = [{"system": "ours", "precision": "fp32", "peak_memory_mb": m, "first_epoch_samples_per_s": v,
              "later_epochs_samples_per_s": None, "train_samples_per_s": v, "eval_samples_per_s": 2 * v}
             for v, m in ((3.0, 10.0), (1.0, 30.0), (2.0, 20.0))]
    row = module.median_row(tries)
    assert (row["train_samples_per_s"], row["eval_samples_per_s"], row["peak_memory_mb"]) == (2.0, 4.0, 20.0)
    assert row["train_samples_per_s_each"] == [3.0, 1.0, 2.0]
    assert row["later_epochs_samples_per_s"] is None  # a one-epoch run has no later epochs
