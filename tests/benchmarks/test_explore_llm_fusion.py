"""benchmarks/explore_llm_fusion.py: the fusion grid of growing_pool on a causal LM, on validation data."""

from __future__ import annotations

import json
import math

import pytest
import torch

from cl_prompts.data.synthetic import synthetic_text_dataset


def make_test_and_val_runs(tmp_path):
    """Two tiny growing_pool runs of one config on a file benchmark: tmp_path/test and tmp_path/val."""
    from cl_prompts.run import RunConfig, run

    data = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=6, test_per_class=3)
    csv = tmp_path / "data.csv"
    csv.write_text("text,label\n" + "".join(f"{t},{data.class_names[y]}\n" for t, y in
                                              zip(data.train.texts, data.train.labels, strict=True)))
    options = {"prompt_length": 2, "projection_dim": 32, "ridge": 1.0}
    base = {"benchmark": f"file:{csv}", "backbone": "tiny-llama", "method": "growing_pool", "experiences": 2,
            "progress": False, "plots": False, "batch_size": 4, "method_options": options, "val_fraction": 0.34}
    run(RunConfig(**base, out=str(tmp_path / "test")))
    run(RunConfig(**base, eval_split="val", out=str(tmp_path / "val")))


@pytest.fixture(scope="module")
def fusion(benchmark_script):
    return benchmark_script("explore_llm_fusion")


def test_accuracy_adds_the_weighted_routing_to_the_answers_of_the_first_candidates(fusion):
    class_task = torch.tensor([0, 0, 1, 1])
    s = {"answers": torch.tensor([[-1.0, -2.0, -0.5, -3.0], [-2.0, -1.0, -0.5, float("-inf")]]),
         "route": torch.tensor([[0.9, 0.1, 0.2, 0.0], [0.0, 0.8, 0.1, 0.0]]),
         "cands": torch.tensor([[0, 1], [0, 1]]), "y": torch.tensor([0, 1])}
    assert fusion.accuracy(s, class_task, 1, 0.0) == 100.0  # task 0 only: classes 0 and 1
    assert fusion.accuracy(s, class_task, 2, 0.0) == 0.0  # class 2's answer wins both
    assert fusion.accuracy(s, class_task, 2, 1.0) == 100.0  # -1 + 0.9 > -0.5 + 0.2; -1 + 0.8 > -0.5 + 0.1
    assert fusion.accuracy(s, class_task, 2, math.inf) == 100.0  # the routing classifier alone


def test_the_script_refuses_a_test_run_and_writes_its_grid_for_a_val_run(fusion, tmp_path, monkeypatch):
    make_test_and_val_runs(tmp_path)
    with pytest.raises(SystemExit, match="--eval-split val"):
        fusion.main([str(tmp_path / "test"), "--out", str(tmp_path / "f.json")])
    out = fusion.main([str(tmp_path / "val"), "--candidates", "1", "2", "--weights", "0", "1", "inf",
                       "--out", str(tmp_path / "f.json")])
    doc = json.loads(out.read_text())
    assert [(g["candidates"], g["route_weight"]) for g in doc["grid"]] == [
        (1, 0.0), (1, 1.0), (1, "inf"), (2, 0.0), (2, 1.0), (2, "inf")]
    assert doc["validation_samples"] == 4 * 2  # a third of 6 rows per class held out
    assert doc["chosen"]["val_accuracy"] == max(g["val_accuracy"] for g in doc["grid"])
    assert doc["command"].startswith("python benchmarks/explore_llm_fusion.py")


def test_the_chosen_pair_scored_on_a_test_run_at_its_own_settings_gives_its_own_figure(fusion, tmp_path):
    make_test_and_val_runs(tmp_path)
    # the run's own settings (candidates 2, route_weight 30) are the only pair: the same model, the same figure
    out = fusion.main([str(tmp_path / "val"), "--candidates", "2", "--weights", "30", "--test-run",
                       str(tmp_path / "test"), "--out", str(tmp_path / "f.json")])
    test = json.loads(out.read_text())["test"]
    assert len(test["per_experience"]) == 2
    assert test["final_average_accuracy"] == pytest.approx(test["at_run_settings"])
    with pytest.raises(SystemExit, match="test-split run of the same method config"):
        fusion.main([str(tmp_path / "val"), "--test-run", str(tmp_path / "val"), "--out", str(tmp_path / "g.json")])


def test_a_written_grid_is_reused_for_the_test_run_and_refused_for_another_run(fusion, tmp_path):
    make_test_and_val_runs(tmp_path)
    args = [str(tmp_path / "val"), "--candidates", "1", "2", "--weights", "0", "1", "inf"]
    fresh = json.loads(fusion.main([*args, "--test-run", str(tmp_path / "test"), "--out", str(tmp_path / "f.json")])
                       .read_text())
    reused = json.loads(fusion.main([str(tmp_path / "val"), "--grid", str(tmp_path / "f.json"), "--test-run",
                                     str(tmp_path / "test"), "--out", str(tmp_path / "g.json")]).read_text())
    assert reused["grid"] == fresh["grid"] and reused["chosen"] == fresh["chosen"]
    assert reused["test"]["final_average_accuracy"] == fresh["test"]["final_average_accuracy"]
    assert reused["grid_from"] == str(tmp_path / "f.json")
    (tmp_path / "other.json").write_text(json.dumps({**fresh, "run": str(tmp_path / "another-run")}))
    with pytest.raises(SystemExit, match="holds the grid of"):
        fusion.main([str(tmp_path / "val"), "--grid", str(tmp_path / "other.json"), "--out", str(tmp_path / "h.json")])


def test_score_test_scores_the_validation_runs_own_model_on_the_test_split(fusion, tmp_path):
    from cl_prompts.data import load_benchmark
    from cl_prompts.methods import load_model
    from cl_prompts.run import RunConfig
    from cl_prompts.run.checkpoints import latest_model_dir
    from cl_prompts.run.config import read_config_file
    from cl_prompts.run.loop import TokenizedStream
    from cl_prompts.run.runner import load_run_backbone, run_subset

    make_test_and_val_runs(tmp_path)
    out = fusion.main([str(tmp_path / "val"), "--candidates", "1", "2", "--weights", "0", "inf", "--score-test",
                       "--out", str(tmp_path / "f.json")])
    test = json.loads(out.read_text())["test"]
    # the model's own prediction (its candidates 2, route_weight 30) on the test split, computed directly
    config = RunConfig(**{**read_config_file(tmp_path / "val" / "results.json"), "eval_split": "test"})
    backbone = load_run_backbone(config)
    model = load_model(latest_model_dir(tmp_path / "val"), backbone).eval()
    stream = TokenizedStream(run_subset(load_benchmark(config), config), backbone, "cpu")
    per, alone = [], []
    with torch.no_grad():
        for e in range(len(stream.experiences)):
            x, y = stream.batch("test", stream.indices("test", e))
            per.append(100.0 * float((model(x).argmax(-1) == y).float().mean()))
            route, _ = model.candidate_tasks(x)
            alone.append(100.0 * float((route.argmax(-1) == y).float().mean()))
    assert test["split"] == "test" and test["test_samples"] == sum(len(stream.indices("test", e)) for e in range(2))
    assert test["at_run_settings"] == pytest.approx(sum(per) / len(per))
    assert test["routing_alone"] == pytest.approx(sum(alone) / len(alone))
    assert test["final_average_accuracy"] == pytest.approx(sum(test["per_experience"]) / 2)
    with pytest.raises(SystemExit):  # one or the other
        fusion.main([str(tmp_path / "val"), "--score-test", "--test-run", str(tmp_path / "test"),
                     "--out", str(tmp_path / "g.json")])
