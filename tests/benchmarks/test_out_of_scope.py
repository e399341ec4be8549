"""benchmarks/out_of_scope.py on a miniature CLINC150 folder and the tiny backbone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cl_prompts.data import synthetic_text_dataset
from cl_prompts.run import RunConfig, run


@pytest.fixture(scope="module")
def script(benchmark_script):
    return benchmark_script("out_of_scope")


def _fake_clinc(root: Path) -> Path:
    """clinc150/ with 2 domains of 3 intents; out-of-scope sentences hold no intent keyword."""
    ds = synthetic_text_dataset(num_classes=6, num_experiences=2, train_per_class=10, test_per_class=6,
                                calibration_per_class=6)
    names = ds.class_names

    def rows(split):
        return [[t, names[y]] for t, y in zip(split.texts, split.labels, strict=True)]

    filler = [f"the {w} of it and my" for w in ("a", "is", "to", "with", "for", "on", "this", "of")]
    folder = root / "clinc150"
    folder.mkdir(parents=True)
    (folder / "data_full.json").write_text(json.dumps({
        "train": rows(ds.train), "val": rows(ds.calibration), "test": rows(ds.test),
        "oos_train": [], "oos_val": [[t, "oos"] for t in filler[:4]], "oos_test": [[t, "oos"] for t in filler[4:]],
    }))
    (folder / "domains.json").write_text(json.dumps({"d0": names[:3], "d1": names[3:]}))
    return root


def test_scores_are_chosen_on_val_and_reported_on_test(script, tmp_path, capsys):
    data_root = _fake_clinc(tmp_path / "data")
    runs = []
    for method, options in (("ranpac", {"projection_dim": 64, "ridge": 1.0}), ("ncm", {})):
        out = tmp_path / method
        run(RunConfig(method=method, backbone="tiny-bert", data_root=str(data_root), out=str(out),
                      progress=False, plots=False, method_options=options))
        runs.append(str(out))
    (tmp_path / "unfinished").mkdir()
    report = tmp_path / "oos.json"
    assert script.main([*runs, str(tmp_path / "unfinished"), "--data-root", str(data_root),
                        "--out", str(report)]) == 0
    captured = capsys.readouterr()
    assert "skip" in captured.err and "unfinished" in captured.err
    doc = json.loads(report.read_text())
    assert [r["method"] for r in doc["runs"]] == ["ranpac", "ncm"]
    for entry in doc["runs"]:
        scores = entry["scores"]
        assert entry["chosen_score"] == max(scores, key=lambda s: scores[s]["val_auroc"])
        for figures in scores.values():
            test = figures["test"]
            assert 0 <= test["auroc"] <= 1 and 0 <= test["out_of_scope_recall"] <= 1
            assert figures["calibration"]["false_rejection"] == 0.05
        # equal-sized experiences: the accuracy over all test sentences is the final average accuracy
        assert entry["in_scope_test_accuracy"] == pytest.approx(entry["final_average_accuracy"])
    assert "| ranpac | 0 |" in doc["table"] and doc["table"] in captured.out


def test_nothing_to_measure_exits_with_2(script, tmp_path, capsys):
    data_root = _fake_clinc(tmp_path / "data")
    assert script.main([str(tmp_path), "--data-root", str(data_root), "--out", str(tmp_path / "x.json")]) == 2
    assert "no CLINC150 run" in capsys.readouterr().err
