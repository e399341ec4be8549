"""A causal LM whose frozen query comes from a separate sentence encoder (``query_encoder``)."""

from __future__ import annotations

import pytest
import torch

from cl_prompts.backbones import BackboneConfig, CausalLMConfig, load_backbone, load_causal_lm
from cl_prompts.data.tensors import trim_padding

TEXTS = ["book a flight to paris", "what is my balance", "set an alarm for six in the morning please"]


@pytest.fixture(scope="module")
def lm():
    return load_causal_lm(CausalLMConfig(name_or_path="tiny-llama", query_encoder="tiny-bert"))


def test_tokenize_adds_the_encoders_tokens_of_the_raw_text(lm):
    x = lm.tokenize(TEXTS)
    want = lm.query_encoder.tokenize(TEXTS)
    assert torch.equal(x["query_input_ids"], want["input_ids"])
    assert torch.equal(x["query_attention_mask"], want["attention_mask"])
    assert x["input_ids"].shape[1] == lm.config.max_length  # the templated LLM input is still there


def test_the_query_is_the_encoders_features_and_the_prompts_still_go_to_the_llm(lm):
    x = lm.tokenize(TEXTS)
    q = lm.query_features(x, layers=2, use_cache=False)
    want = lm.query_encoder.query_features(lm.query_encoder.tokenize(TEXTS), layers=2, use_cache=False)
    assert torch.allclose(q, want)
    assert q.shape == (3, lm.query_width(2)) == (3, 2 * lm.query_encoder.hidden_size)
    prompts = torch.randn(1, 2, lm.hidden_size)
    assert not torch.allclose(lm(x, prompts).pooled, lm(x).pooled)  # the LLM's own pass sees the prompts


def test_without_the_encoders_tokens_the_query_names_what_is_missing(lm):
    x = lm.tokenize(TEXTS)
    plain = {"input_ids": x["input_ids"], "attention_mask": x["attention_mask"]}
    with pytest.raises(ValueError, match="query_input_ids"):
        lm.query_features(plain)


def test_the_encoder_is_part_of_the_identity_a_saved_method_checks(lm):
    plain = load_causal_lm(CausalLMConfig(name_or_path="tiny-llama"))
    assert lm.identity()["query_encoder"]["name_or_path"] == "tiny-bert"
    assert plain.identity()["query_encoder"] is None


def test_load_backbone_passes_the_query_encoder_to_a_causal_lm_and_refuses_it_for_an_encoder():
    lm = load_backbone(BackboneConfig(name_or_path="tiny-llama", query_encoder="tiny-bert"))
    assert lm.query_encoder is not None and lm.query_encoder.config.name_or_path == "tiny-bert"
    with pytest.raises(ValueError, match="query_encoder is for causal LMs"):
        load_backbone(BackboneConfig(name_or_path="tiny-bert", query_encoder="tiny-bert"))
    with pytest.raises(ValueError, match="query_encoder must be a text encoder"):
        load_causal_lm(CausalLMConfig(name_or_path="tiny-llama", query_encoder="tiny-gpt2"))
    with pytest.raises(ValueError, match="query_encoder must be a model name"):
        CausalLMConfig(query_encoder=" ")


def test_trim_padding_trims_each_group_by_its_own_mask(lm):
    x = lm.tokenize(TEXTS[:2])
    trimmed = trim_padding(x)
    real = int(x["query_attention_mask"].sum(dim=1).max())
    assert trimmed["query_input_ids"].shape[1] == real < x["query_input_ids"].shape[1]
    assert torch.equal(trimmed["input_ids"], x["input_ids"][:, : trimmed["input_ids"].shape[1]])
    assert int(trimmed["attention_mask"].sum()) == int(x["attention_mask"].sum())  # no real LLM token lost


def test_the_query_cache_and_precision_of_a_causal_lm_are_its_encoders(tmp_path):
    lm = load_causal_lm(CausalLMConfig(name_or_path="tiny-llama", query_encoder="tiny-bert"))
    q = lm.query_features(lm.tokenize(TEXTS))
    assert lm.query_cache_info()["size"] == 3 == lm.query_encoder.query_cache_info()["size"]
    lm.save_query_cache(tmp_path / "cache.safetensors")
    lm.clear_query_cache()
    assert lm.query_encoder.query_cache_info()["size"] == 0
    again = load_causal_lm(CausalLMConfig(name_or_path="tiny-llama", query_encoder="tiny-bert",
                                          query_cache_path=str(tmp_path / "cache.safetensors")))
    assert again.query_cache_info()["size"] == 3  # the saved file held the encoder's features
    assert torch.equal(again.query_features(again.tokenize(TEXTS)), q)
    assert again.query_cache_info()["hits"] == 3
    plain = load_causal_lm(CausalLMConfig(name_or_path="tiny-llama"))
    with pytest.raises(ValueError):  # the LLM's own query is another feature: refused
        plain.load_query_cache(tmp_path / "cache.safetensors")
    lm.set_precision("bf16")
    assert lm.precision == "bf16" and lm.query_encoder.precision == "bf16"
