"""load_benchmark: the dataset a benchmark name stands for, in the order and grouping asked for."""

import csv

import pytest

from cl_prompts.data import load_benchmark
from cl_prompts.run import RunConfig


def _write(path, n_classes=4, per_class=5):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for c in range(n_classes):
            for i in range(per_class):
                w.writerow([f"sample {i} of class {c}", f"class_{chr(100 - c)}"])


def test_a_text_file_is_grouped_as_the_run_asks(tmp_path):
    _write(tmp_path / "rows.csv")
    ds = load_benchmark(RunConfig(benchmark=f"file:{tmp_path / 'rows.csv'}", experiences=2, class_order="sorted"))
    assert ds.num_classes == 4 and len(ds.experiences) == 2
    names = [ds.class_names[c] for e in ds.experiences for c in e]
    assert names == sorted(names)


def test_missing_and_directory_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="--benchmark file: data file not found"):
        load_benchmark(RunConfig(benchmark=f"file:{tmp_path / 'absent.csv'}"))
    with pytest.raises(IsADirectoryError, match="must name a file"):
        load_benchmark(RunConfig(benchmark=f"file:{tmp_path}"))


def test_validation_never_reads_the_test_file(tmp_path):
    _write(tmp_path / "rows.csv")
    options = RunConfig(benchmark=f"file:{tmp_path / 'rows.csv'}", test_file=str(tmp_path / "absent.csv"),
                        eval_split="val")
    assert load_benchmark(options).num_classes == 4
