import dataclasses

import pytest

from cl_prompts.backbones import BackboneConfig, supported_families
from cl_prompts.backbones.config import check_family


def test_defaults_are_the_offline_minilm_and_json_serialisable():
    cfg = BackboneConfig()
    assert cfg.name_or_path == "minilm"
    assert cfg.pooling == "auto" and cfg.query_cache and not cfg.query_cache_vision
    assert dataclasses.asdict(cfg)["max_length"] == 64


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"name_or_path": ""}, TypeError, "name_or_path"),
        ({"pooling": "max"}, ValueError, "pooling"),
        ({"max_length": 1}, ValueError, "max_length"),
        ({"max_length": 8.0}, TypeError, "max_length"),
        ({"query_cache": 1}, TypeError, "query_cache"),
        ({"query_cache_vision": "yes"}, TypeError, "query_cache_vision"),
        ({"query_cache_path": 3}, TypeError, "query_cache_path"),
    ],
)
def test_bad_values_raise_naming_the_argument(kwargs, error, words):
    with pytest.raises(error, match=words):
        BackboneConfig(**kwargs)


def test_unsupported_family_error_lists_supported_ones():
    with pytest.raises(ValueError) as info:
        check_family("gpt2")
    message = str(info.value)
    assert "gpt2" in message
    for family in ("bert", "roberta", "distilbert", "vit", "deit"):
        assert family in message
    assert set(supported_families()) >= {"bert", "roberta", "distilbert", "vit", "deit"}
