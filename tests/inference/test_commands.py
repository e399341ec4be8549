"""``cl-prompts predict`` and ``cl-prompts calibrate`` on a tiny CSV run."""

import csv
import json

import pytest

from cl_prompts.cli import main
from cl_prompts.data import synthetic_text_dataset, write_text_csv
from cl_prompts.inference import CALIBRATION_FILE


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    ds = synthetic_text_dataset(num_classes=6, num_experiences=3, train_per_class=8, test_per_class=3,
                                calibration_per_class=4)
    for name, split in (("train.csv", ds.train), ("val.csv", ds.calibration)):
        write_text_csv(root / name, [split], ds.class_names, text_column="utterance", label_column="intent")
    out = root / "run"
    assert main(["run", "--benchmark", f"file:{root / 'train.csv'}", "--backbone", "tiny-bert",
                 "--text-column", "utterance", "--label-column", "intent", "--method", "ranpac",
                 "--set", "projection_dim=64", "--experiences", "3", "--out", str(out),
                 "--no-progress", "--no-plots"]) == 0
    return out


def test_predict_prints_names_and_says_when_uncalibrated(run_dir, capsys):
    capsys.readouterr()
    assert main(["predict", str(run_dir), "apple pie", "a guitar solo"]) == 0
    out = capsys.readouterr().out
    assert out.count("not calibrated") == 2 and "cl-prompts calibrate" in out
    assert "'apple pie'" in out and "apple" in out.splitlines()[0]


def test_calibrate_then_predict_to_csv_and_jsonl(run_dir, tmp_path, capsys):
    val = run_dir.parent / "val.csv"
    assert main(["calibrate", str(run_dir), "--file", str(val), "--text-column", "utterance",
                 "--label-column", "intent", "--false-rejection", "0.1"]) == 0
    saved = json.loads((run_dir / CALIBRATION_FILE).read_text())
    assert saved["false_rejection"] == 0.1 and saved["source"].startswith("val.csv: 24")
    assert main(["calibrate", str(run_dir), "--file", str(val)]) == 2  # exists: not replaced
    assert "pass --overwrite" in capsys.readouterr().err
    texts = tmp_path / "texts.txt"
    texts.write_text("apple pie\n\nriver bank\n")
    assert main(["predict", str(run_dir), "--file", str(texts), "--out", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["text"] for r in rows] == ["apple pie", "river bank"]
    assert all(r["out_of_scope"] in ("True", "False") and len(r["labels"].split("|")) == 3 for r in rows)
    assert main(["predict", str(run_dir), "apple", "--out", str(tmp_path / "p.jsonl"), "--top-k", "1"]) == 0
    row = json.loads((tmp_path / "p.jsonl").read_text())
    assert len(row["labels"]) == 1 and isinstance(row["out_of_scope"], bool)
    assert main(["predict", str(run_dir), "apple", "--out", str(tmp_path / "p.jsonl")]) == 2  # never overwritten


@pytest.mark.parametrize("args, message", [
    ([], "give texts to label"),
    (["--file", "missing.csv"], "--file not found"),
    (["x", "--out", "p.xlsx"], "--out must end with .csv or .jsonl"),
])
def test_predict_refuses_bad_input_in_one_line(run_dir, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["predict", str(run_dir), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_predict_names_the_missing_text_column_flag(run_dir, tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("sentence\napple\n")
    assert main(["predict", str(run_dir), "--file", str(table)]) == 2
    assert "--text-column" in capsys.readouterr().err
