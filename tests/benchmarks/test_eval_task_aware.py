"""benchmarks/eval_task_aware.py: a finished run evaluated with the task label given."""

from __future__ import annotations

import json

import pytest
import torch

from cl_prompts.data.synthetic import synthetic_text_dataset
from cl_prompts.run import RunConfig, run


def make_run(tmp_path, method: str, options: dict):
    data = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=6, test_per_class=3)
    csv = tmp_path / "data.csv"
    csv.write_text("text,label\n" + "".join(f"{t},{data.class_names[y]}\n" for t, y in
                                              zip(data.train.texts, data.train.labels, strict=True)))
    out = tmp_path / method
    run(RunConfig(benchmark=f"file:{csv}", backbone="tiny-llama", method=method, experiences=2, progress=False,
                  plots=False, batch_size=4, method_options=options, out=str(out)))
    return out


def test_progressive_prompts_task_aware_accuracy_is_written_beside_the_class_incremental_one(
        tmp_path, benchmark_script):
    module = benchmark_script("eval_task_aware")
    run_dir = make_run(tmp_path, "progressive_prompts", {"prompt_length": 2})
    doc = module.main([str(run_dir), "--out", str(tmp_path / "ta.json")])
    assert json.loads((tmp_path / "ta.json").read_text()) == doc
    assert len(doc["per_experience"]) == 2 and all(0 <= a <= 100 for a in doc["per_experience"])
    assert doc["final_average_accuracy"] == pytest.approx(sum(doc["per_experience"]) / 2)
    results = json.loads((run_dir / "results.json").read_text())
    assert doc["class_incremental_final_average_accuracy"] == results["final_average_accuracy"]


def test_a_method_without_a_task_aware_form_is_refused(tmp_path, benchmark_script):
    module = benchmark_script("eval_task_aware")
    run_dir = make_run(tmp_path, "ncm", {})
    with pytest.raises(SystemExit, match="no task_aware_logits"):
        module.main([str(run_dir)])


def test_task_aware_accuracy_counts_each_experience_among_its_own_classes(benchmark_script):
    module = benchmark_script("eval_task_aware")

    class Model:
        def task_aware_logits(self, x, e):  # always the task's first class
            logits = torch.full((len(x["input_ids"]), 4), float("-inf"))
            logits[:, 2 * e] = 0.0
            return logits

    class Stream:
        experiences = [[0, 1], [2, 3]]
        y = torch.tensor([0, 1, 0, 2, 2, 3])

        def indices(self, split, e):
            return torch.nonzero(torch.isin(self.y, torch.tensor(self.experiences[e]))).flatten()

        def batch(self, split, idx):
            return {"input_ids": torch.zeros(len(idx), 1)}, self.y[idx]

    assert module.task_aware_accuracy(Model(), Stream(), batch_size=2) == pytest.approx([200 / 3, 200 / 3])
