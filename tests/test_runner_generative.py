"""Runs of the methods that answer by generation: few-shot protocol, answer texts, predict."""

from __future__ import annotations

import pytest

from cl_prompts.data.synthetic import synthetic_text_dataset
from cl_prompts.inference import Predictor
from cl_prompts.run import RunConfig, run
from cl_prompts.run.checkpoints import latest_model_dir

TINY_POOL = {"lr": 0.05, "prompt_length": 2, "projection_dim": 32, "ridge": 1.0}


def config(tmp_path, **kw) -> RunConfig:
    base = {"backbone": "tiny-llama", "method": "growing_pool", "out": str(tmp_path / "run"), "progress": False,
            "plots": False, "batch_size": 4, "method_options": TINY_POOL}
    return RunConfig(**{**base, **kw})


def test_a_few_shot_run_on_a_causal_lm_trains_on_n_per_class_and_answers_with_the_label_texts(tmp_path):
    data = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=6, test_per_class=4)
    labels = tmp_path / "labels.csv"
    labels.write_text(f"label,text\n{data.class_names[0]},the first one\n")
    results = run(config(tmp_path, train_per_class=3, test_per_class=2, label_text=str(labels)), dataset=data)
    assert results["train_samples"] == 4 * 3  # 3 per class, one epoch
    assert len(results["accuracy_matrix"]) == 2
    assert results["method_config"]["route_weight"] == 30.0  # the causal LM variant's config
    assert results["key_search"]["backend"] == "faiss"
    predictor = Predictor.from_pretrained(latest_model_dir(tmp_path / "run"))
    assert predictor.model.answer_texts[0] == "the first one"
    assert predictor.model.answer_texts[1] == data.class_names[1].replace("_", " ")
    answer = predictor.predict([data.test.texts[0]])[0]
    assert answer.labels[0] in data.class_names and answer.experience in (0, 1)


def test_answer_texts_are_refused_for_a_method_that_reads_features(tmp_path):
    data = synthetic_text_dataset(num_classes=4, num_experiences=2)
    labels = tmp_path / "labels.csv"
    labels.write_text("label,text\n")
    with pytest.raises(ValueError, match="label_text gives answer texts to the methods that answer by generation"):
        run(config(tmp_path, method="ncm", method_options={}, label_text=str(labels)), dataset=data)


def test_an_option_of_the_other_variant_is_refused_before_anything_loads(tmp_path):
    # route_weight belongs to growing_pool on a causal LM, not on an encoder
    with pytest.raises(TypeError, match="unknown config option.*route_weight"):
        run(RunConfig(backbone="minilm", method="growing_pool", method_options={"route_weight": 1.0},
                      out=str(tmp_path / "r"), progress=False))
    with pytest.raises(ValueError, match="does not run on a causal LM"):
        run(RunConfig(backbone="tiny-llama", method="dualprompt", out=str(tmp_path / "r"), progress=False))


@pytest.mark.parametrize("kw, match", [
    ({"train_per_class": 0}, "train_per_class must be an int >= 1"),
    ({"test_per_class": 2.5}, "test_per_class must be an int >= 1"),
    ({"label_text": " "}, "label_text must be a non-empty string"),
])
def test_few_shot_options_are_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        RunConfig(**kw)


def test_the_few_shot_sizes_name_the_run_folder():
    cfg = RunConfig(train_per_class=20, test_per_class=5, backbone="smollm2")
    assert cfg.run_dir("hwu64").name == "hwu64-growing_pool-seed0-fs20-test5"


def test_predict_prints_what_the_model_says_only_for_a_generative_run(tmp_path, capsys):
    from cl_prompts.cli import main

    data = synthetic_text_dataset(num_classes=4, num_experiences=2)
    run(config(tmp_path), dataset=data)
    assert main(["predict", str(tmp_path / "run"), data.test.texts[0], "--generate", "3"]) == 0
    out = capsys.readouterr().out
    assert f"{data.test.texts[0]!r} -> the model says " in out
    run(config(tmp_path, method="ncm", method_options={}, out=str(tmp_path / "ncm")), dataset=data)
    assert main(["predict", str(tmp_path / "ncm"), "hello", "--generate", "3"]) == 2
    assert "--generate needs a run of a method that answers by generation" in capsys.readouterr().err


def test_a_run_with_a_query_encoder_saves_it_and_predict_loads_it_again(tmp_path):
    data = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=4, test_per_class=2)
    results = run(config(tmp_path, query_encoder="tiny-bert", instruction="Name the intent."), dataset=data)
    assert results["config"]["query_encoder"] == "tiny-bert"
    predictor = Predictor.from_pretrained(latest_model_dir(tmp_path / "run"))
    backbone = predictor.model.backbone
    assert backbone.query_encoder.config.name_or_path == "tiny-bert"
    assert backbone.config.instruction == "Name the intent."
    assert backbone.config.max_length == results["config"]["max_length"] + 64  # the template's room, once
    assert predictor.predict([data.test.texts[0]])[0].labels[0] in data.class_names


def test_a_query_encoder_is_refused_for_an_encoder_backbone(tmp_path):
    with pytest.raises(ValueError, match="query_encoder is for causal LMs"):
        run(config(tmp_path, backbone="tiny-bert", method="ncm", method_options={}, query_encoder="tiny-bert"),
            dataset=synthetic_text_dataset(num_classes=4, num_experiences=2))


def test_the_query_encoder_changes_the_routing_of_growing_pool_and_not_its_trained_prompts(tmp_path):
    import torch

    from cl_prompts.inference import Predictor

    data = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=4, test_per_class=2)
    run(config(tmp_path, out=str(tmp_path / "own")), dataset=data)
    run(config(tmp_path, out=str(tmp_path / "minilm"), query_encoder="tiny-bert"), dataset=data)
    own, enc = (Predictor.from_pretrained(latest_model_dir(tmp_path / name)).model for name in ("own", "minilm"))
    # each experience's prompt trains on its own answers under its own prompt: no routing in the loss
    assert torch.equal(own.input_prompts()[0], enc.input_prompts()[0])
    assert not torch.allclose(own.route_readout, enc.route_readout)  # routing reads another query


class _Stop(RuntimeError):
    pass


def _stop_after_first(e, state):
    if e == 0:
        raise _Stop("stopped")


def test_the_pooling_option_reaches_the_causal_lm_and_binds_a_resume_through_its_identity(tmp_path):
    data = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=4, test_per_class=2)
    ncm = {"method": "ncm", "method_options": {}}
    with pytest.raises(ValueError, match="pooling must be one of"):
        RunConfig(pooling="max")
    assert RunConfig(pooling="mean").identity() == RunConfig().identity()  # bound by the backbone's identity
    with pytest.raises(_Stop):
        run(config(tmp_path, **ncm, pooling="mean"), dataset=data, on_experience_end=_stop_after_first)
    assert Predictor.from_run(tmp_path / "run").model.backbone.config.query_pooling == "mean"
    with pytest.raises(ValueError, match="checkpoint mismatch in backbone.pooling: saved 'mean', this run has 'text'"):
        run(config(tmp_path, **ncm, resume=True), dataset=data)
    results = run(config(tmp_path, **ncm, pooling="mean", resume=True), dataset=data)
    assert results["resumed_at"] == [1] and results["config"]["pooling"] == "mean"
    assert results["config"]["query_layer"] == "auto"


def test_the_query_layer_option_reaches_the_causal_lm_and_is_refused_for_an_encoder(tmp_path):
    data = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=4, test_per_class=2)
    with pytest.raises(ValueError, match="query_layer must be 'auto', 'middle', 'last' or an int"):
        RunConfig(query_layer="first")
    run(config(tmp_path, method="ncm", method_options={}, query_layer="last"), dataset=data)
    model_dir = latest_model_dir(tmp_path / "run")
    assert Predictor.from_pretrained(model_dir).model.backbone.query_layer is None
    with pytest.raises(ValueError, match="query_layer is for causal LMs"):
        run(RunConfig(backbone="tiny-bert", method="ncm", query_layer=1, out=str(tmp_path / "enc"), progress=False),
            dataset=data)


def test_a_causal_lm_method_saved_before_its_query_options_were_recorded_loads_with_its_own(tmp_path):
    import json

    data = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=4, test_per_class=2)
    run(config(tmp_path, method="ncm", method_options={}, pooling="mean"), dataset=data)
    model_dir = latest_model_dir(tmp_path / "run")
    meta_file = model_dir / "method.json"
    meta = json.loads(meta_file.read_text())
    assert meta["backbone_config"]["pooling"] == meta["backbone"]["pooling"] == "mean"
    assert meta["backbone_config"]["query_layer"] == meta["backbone"]["query_layer"] == 1  # the middle of 2
    meta["backbone_config"]["pooling"] = "auto"  # what older versions wrote
    del meta["backbone_config"]["query_layer"]
    meta["backbone"]["query_layer"] = None  # their query: the last layer
    meta_file.write_text(json.dumps(meta))
    backbone = Predictor.from_pretrained(model_dir).model.backbone
    assert backbone.config.query_pooling == "mean" and backbone.query_layer is None
