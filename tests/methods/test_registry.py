"""build_model / load_model / list_methods: names, config errors, mismatches."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.methods import (
    ContinualMethod,
    build_model,
    get_method_class,
    list_methods,
    load_model,
)


def test_unknown_method_lists_the_valid_ones(backbone):
    with pytest.raises(ValueError, match="unknown method 'l3p'") as err:
        build_model("l3p", backbone, 6)
    for name in list_methods():
        assert name in str(err.value)


def test_unknown_option_lists_the_valid_ones(backbone):
    with pytest.raises(TypeError, match=r"unknown config option\(s\) \['pool_sise'\]") as err:
        build_model("l2p", backbone, 6, pool_sise=3)
    assert "pool_size" in str(err.value) and "top_k" in str(err.value)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("l2p", {"lr": -1.0}, "lr must be > 0"),
        ("l2p", {"top_k": 0}, "top_k must be > 0"),
        ("linear_probe", {"head": "mlp"}, r"head must be one of \['linear', 'cosine'\]"),
        ("ncm", {"metric": "l1"}, r"metric must be one of \['cosine', 'euclidean'\]"),
        ("linear_probe", {"optimizer": "lion"}, r"optimizer must be one of \['adam', 'adamw', 'sgd'\]"),
        ("growing_pool", {"candidates": 0}, "candidates must be > 0"),
    ],
)
def test_bad_config_values_are_named(name, kwargs, match, backbone):
    with pytest.raises(ValueError, match=match):
        build_model(name, backbone, 6, **kwargs)


def test_bad_types_are_named(backbone):
    with pytest.raises(TypeError, match="mask_absent must be a bool"):
        build_model("linear_probe", backbone, 6, mask_absent="yes")
    with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
        build_model("ncm", backbone, 0)


def test_layers_beyond_the_backbone_are_refused(backbone):
    with pytest.raises(ValueError, match=r"e_layers must be layer indices in \[0, 2\)"):
        build_model("dualprompt", backbone, 6, g_layers=(0,), e_layers=(1, 2))


@pytest.mark.parametrize("name", list_methods())
def test_configs_round_trip_through_json(name):
    cls = get_method_class(name)
    cfg = cls.config_class()
    again = cls.config_class(**json.loads(json.dumps(dataclasses.asdict(cfg))))
    assert again == cfg
    assert cls.config_class.__doc__ and "default" in cls.config_class.__doc__.lower()


def test_lifecycle_errors(backbone, stream, h):
    model = h.build("linear_probe", backbone)
    with pytest.raises(ValueError, match="experience must be 0"):
        model.begin_experience(1, [0, 1])
    with pytest.raises(ValueError, match="classes must be distinct ints"):
        model.begin_experience(0, [0, 0])
    with pytest.raises(RuntimeError, match="begin_experience"):
        model.training_loss(stream[0][1], stream[0][2])
    model.begin_experience(0, [0, 1])
    with pytest.raises(ValueError, match=r"targets \[2, 3\] are not classes of experience 0"):
        model.training_loss(stream[1][1], stream[1][2])
    with pytest.raises(ValueError, match="end_experience"):
        model.begin_experience(1, [2, 3])


def test_ncm_refuses_gradient_training(backbone, stream, h):
    model = h.build("ncm", backbone)
    model.begin_experience(0, [0, 1])
    with pytest.raises(RuntimeError, match="use observe"):
        model.training_loss(stream[0][1], stream[0][2])


def test_load_refuses_another_backbone_or_method(backbone, stream, h, tmp_path):
    model = h.build("linear_probe", backbone)
    h.run_experience(model, 0, *stream[0], steps=2)
    model.save_pretrained(tmp_path / "m")
    other = tiny_text_backbone(family="roberta", max_length=10)
    with pytest.raises(ValueError, match="backbone mismatch"):
        load_model(tmp_path / "m", other)
    with pytest.raises(ValueError, match="holds method 'linear_probe', not 'ncm'"):
        get_method_class("ncm").from_pretrained(tmp_path / "m", backbone)
    assert type(ContinualMethod.from_pretrained(tmp_path / "m", backbone)).name == "linear_probe"
    with pytest.raises(FileNotFoundError, match="saved method folder"):
        load_model(tmp_path / "nothing", backbone)


def test_each_method_folder_exports_its_method_and_config():
    import importlib

    from cl_prompts.methods import get_method_class, list_methods

    for name in list_methods():
        package = importlib.import_module(f"cl_prompts.methods.{name}")
        cls = get_method_class(name)
        assert getattr(package, cls.__name__) is cls
        assert getattr(package, cls.config_class.__name__) is cls.config_class
        assert sorted(package.__all__) == sorted([cls.__name__, cls.config_class.__name__])
