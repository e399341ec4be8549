"""Predictor and the runner's calibration on the tiny backbone and a synthetic stream."""

import json

import pytest
import torch

from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.data import synthetic_text_dataset
from cl_prompts.inference import CALIBRATION_FILE, Calibration, Predictor
from cl_prompts.run import RunConfig, run
from cl_prompts.run.checkpoints import latest_model_dir

TINY = {
    "growing_pool": {"projection_dim": 64, "ridge": 1.0, "prompted_ridge": 1.0, "prompt_length": 2},
    "ranpac": {"projection_dim": 64, "ridge": 1.0},
    "l2p": {"pool_size": 6, "prompt_length": 2, "top_k": 2},
    "dualprompt": {"g_layers": (0,), "e_layers": (1,), "g_length": 2, "e_length": 3},
}


def _data():
    return synthetic_text_dataset(num_classes=8, num_experiences=4, train_per_class=6, test_per_class=3,
                                  calibration_per_class=4)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_run):
    root = tmp_path_factory.mktemp("runs")
    return {method: (root / method, tiny_run(root / method, method, options, _data()))
            for method, options in TINY.items()}


@pytest.mark.parametrize("method", sorted(TINY))
def test_a_finished_run_predicts_names_probabilities_and_flags(runs, method):
    folder, results = runs[method]
    data = _data()
    predictor = Predictor.from_run(folder)  # the backbone is rebuilt from the saved model alone
    preds = predictor.predict(data.test.texts, top_k=3)
    assert len(preds) == len(data.test)
    for p in preds:
        assert p.labels == [data.class_names[i] for i in p.class_ids] and len(p.labels) == 3
        assert p.probabilities == sorted(p.probabilities, reverse=True) and 0 < sum(p.probabilities) <= 1 + 1e-6
        assert isinstance(p.out_of_scope, bool)
    # the top-1 class is the runner's prediction: the same accuracy on the last experience
    last = set(data.experiences[-1])
    rows = [(p.class_ids[0], y) for p, y in zip(preds, data.test.labels, strict=True) if y in last]
    acc = 100 * sum(a == b for a, b in rows) / len(rows)
    assert acc == pytest.approx(results["accuracy_matrix"][-1][-1])
    # the threshold rejects about the chosen share of the held-out in-scope texts
    cal = predictor.calibration
    assert cal == Calibration.from_dict({k: v for k, v in results["calibration"].items() if k != "seconds"})
    held_out = predictor.predict(data.calibration.texts)
    assert sum(p.out_of_scope for p in held_out) <= round(cal.false_rejection * len(held_out)) + 1


def test_the_default_score_adds_class_similarity_where_the_method_keeps_class_means(runs):
    assert Predictor.from_run(runs["ranpac"][0]).calibration.score == "max_logit+similarity"
    assert Predictor.from_run(runs["growing_pool"][0]).calibration.score == "max_logit+similarity"
    assert Predictor.from_run(runs["l2p"][0]).calibration.score == "max_logit"


def test_routing_names_the_experience_and_prompts_of_pool_methods(runs):
    data = _data()
    predictor = Predictor.from_run(runs["growing_pool"][0])
    m = min(predictor.model.config.candidates, 4)  # candidate tasks per input (4 experiences)
    gp = predictor.predict(data.test.texts[:4])
    assert all(0 <= p.experience < 4 and len(p.prompt_ids) == m and len(p.key_scores) == m for p in gp)
    l2p = Predictor.from_run(runs["l2p"][0]).predict(data.test.texts[:4])
    assert all(p.experience is None and len(p.prompt_ids) == 2 for p in l2p)
    ranpac = Predictor.from_run(runs["ranpac"][0]).predict(data.test.texts[:4])
    assert all(p.experience is None and p.prompt_ids == [] for p in ranpac)


def test_model_folder_is_self_contained_after_a_move(runs, tmp_path):
    import shutil

    moved = tmp_path / "elsewhere"
    shutil.copytree(latest_model_dir(runs["growing_pool"][0]), moved)
    meta = json.loads((moved / "method.json").read_text())
    assert meta["class_names"] == _data().class_names and meta["backbone_config"]["name_or_path"] == "tiny-bert"
    a = Predictor.from_pretrained(moved).predict(["apple river"])[0]
    b = Predictor.from_run(runs["growing_pool"][0]).predict(["apple river"])[0]
    assert a == b


def test_calibrate_replaces_the_threshold_and_save_keeps_it(runs, tmp_path):
    data = _data()
    predictor = Predictor.from_run(runs["ranpac"][0])
    before = predictor.calibration
    names = [data.class_names[y] for y in data.test.labels]
    cal = predictor.calibrate(data.test.texts, names, score="energy", false_rejection=0.25)
    assert cal.score == "energy" and cal != before
    scores = [p.score for p in predictor.predict(data.test.texts)]
    assert sum(s < cal.threshold for s in scores) == pytest.approx(0.25 * len(scores), abs=1)
    predictor.save(tmp_path / "recalibrated")
    assert Predictor.from_pretrained(tmp_path / "recalibrated").calibration == cal
    with pytest.raises(FileExistsError, match="not empty"):
        predictor.save(tmp_path / "recalibrated")


def test_bad_inputs_are_refused_with_clear_errors(runs, tmp_path):
    predictor = Predictor.from_run(runs["ranpac"][0])
    with pytest.raises(TypeError, match="wrap it in a list"):
        predictor.predict("one string")
    with pytest.raises(ValueError, match="texts is empty"):
        predictor.predict([])
    with pytest.raises(ValueError, match="top_k"):
        predictor.predict(["a"], top_k=0)
    with pytest.raises(ValueError, match="unknown class name 'nope'"):
        predictor.calibrate(["a"], ["nope"])
    with pytest.raises(ValueError, match="one label per text"):
        predictor.calibrate(["a", "b"], ["apple"])
    with pytest.raises(FileNotFoundError, match="run folder not found"):
        Predictor.from_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        Predictor.from_run(tmp_path / "empty")


def test_a_run_stopped_early_predicts_among_the_classes_it_has_seen(tmp_path):
    class Stop(RuntimeError):
        pass

    def stop_after_two(e, state):
        if e == 1:
            raise Stop

    cfg = RunConfig(method="ranpac", backbone="tiny-bert", out=str(tmp_path), progress=False, plots=False,
                    method_options=TINY["ranpac"])
    with pytest.raises(Stop):
        run(cfg, backbone=tiny_text_backbone(), dataset=_data(), on_experience_end=stop_after_two)
    preds = Predictor.from_run(tmp_path).predict(_data().test.texts, top_k=8)
    seen = set(_data().experiences[0] + _data().experiences[1])
    assert all(set(p.class_ids) == seen for p in preds)  # top_k is capped at the 4 seen classes
    assert all(p.out_of_scope is None for p in preds)  # calibration happens when the run finishes


def test_a_run_folders_calibration_file_wins(runs, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(runs["ranpac"][0], folder)
    (folder / CALIBRATION_FILE).write_text(json.dumps(Calibration(threshold=123.0).to_dict()))
    assert Predictor.from_run(folder).calibration.threshold == 123.0
    assert all(p.out_of_scope for p in Predictor.from_run(folder).predict(["apple"]))
    assert torch.isfinite(torch.tensor(Predictor.from_run(runs["ranpac"][0]).calibration.threshold))


def test_a_model_saved_in_bf16_is_loaded_in_bf16(tmp_path):
    from cl_prompts.methods import build_model, load_model

    backbone = tiny_text_backbone()
    backbone.set_precision("bf16")  # its calibration saw bf16 features: the predictor must too
    model = build_model("ranpac", backbone, num_classes=4, **TINY["ranpac"])
    model.begin_experience(0, [0, 1, 2, 3])
    model.observe(backbone.tokenize(["apple", "river", "stone", "cloud"]), torch.arange(4))
    model.end_experience(0)
    model.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "method.json").read_text())["backbone_config"]["precision"] == "bf16"
    assert Predictor.from_pretrained(tmp_path / "m").model.backbone.config.precision == "bf16"
    assert load_model(tmp_path / "m", tiny_text_backbone()).backbone.config.precision == "fp32"  # given: kept


def test_texts_batched_shortest_first_come_back_in_their_own_order(runs):
    data = _data()
    texts = [t * (1 + i % 3) for i, t in enumerate(data.test.texts[:7])]  # lengths out of order
    predictor = Predictor.from_run(runs["growing_pool"][0])
    predictor.batch_size = 2
    batched = predictor.predict(texts)
    assert [p.text for p in batched] == texts
    alone = [predictor.predict([t])[0] for t in texts]
    assert [p.class_ids for p in batched] == [p.class_ids for p in alone]
    logits = predictor.logits(texts)  # (7, C), row i for texts[i]
    assert torch.allclose(logits, torch.cat([predictor.logits([t]) for t in texts]), atol=1e-5)


def test_a_run_told_not_to_calibrate_predicts_without_an_out_of_scope_flag(tmp_path):
    data = _data()
    assert data.calibration is not None
    cfg = RunConfig(method="ranpac", backbone="tiny-bert", out=str(tmp_path / "run"), progress=False, plots=False,
                    batch_size=8, method_options=TINY["ranpac"], calibrate=False)
    results = run(cfg, backbone=tiny_text_backbone(), dataset=data)
    assert results["calibration"] is None
    assert not (tmp_path / "run" / CALIBRATION_FILE).exists()
    predictor = Predictor.from_run(tmp_path / "run")
    assert predictor.calibration is None
    assert all(p.out_of_scope is None for p in predictor.predict(data.test.texts[:4]))
