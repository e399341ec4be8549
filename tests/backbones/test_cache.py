"""The frozen query pass: cached by content or index, vision bypass, on disk."""

import pytest
import torch

from cl_prompts.backbones.testing import tiny_text_backbone, tiny_vision_backbone

from .conftest import make_inputs


def test_cached_and_uncached_query_features_are_identical(backbone):
    x = make_inputs(backbone)
    uncached = backbone.query_features(x, use_cache=False)
    first = backbone.query_features(x, use_cache=True)
    second = backbone.query_features(x, use_cache=True)
    assert torch.allclose(first, uncached, atol=1e-6)
    assert torch.equal(first, second)
    assert backbone.query_cache_info() == {"size": 3, "hits": 3, "misses": 3}


def test_text_keys_ignore_padding_length_and_batch_composition(text_backbone):
    x = text_backbone.tokenize(["turn on the lights", "play some jazz", "what time is it"])
    full = text_backbone.query_features(x)
    # the same sentences, padded to another length and in another batch: all hits
    y = {k: v[[2, 0], :20] for k, v in x.items()}
    again = text_backbone.query_features(y)
    assert torch.equal(again, full[[2, 0]])
    assert text_backbone.query_cache_info()["hits"] == 2


def test_mixed_hits_and_misses_keep_batch_order(text_backbone):
    x = text_backbone.tokenize(["alpha", "beta", "gamma", "delta"])
    text_backbone.query_features({k: v[[1, 3]] for k, v in x.items()})
    mixed = text_backbone.query_features(x)
    assert torch.allclose(mixed, text_backbone.query_features(x, use_cache=False), atol=1e-6)
    assert text_backbone.query_cache_info() == {"size": 4, "hits": 2, "misses": 2 + 2}


def test_explicit_indices_are_the_keys(text_backbone):
    x = text_backbone.tokenize(["one", "two"])
    y = text_backbone.tokenize(["three", "four"])
    first = text_backbone.query_features(x, indices=torch.tensor([10, 11]))
    # same indices, other content: the caller promised index = sample, so it is a hit
    assert torch.equal(text_backbone.query_features(y, indices=torch.tensor([10, 11])), first)
    with pytest.raises(ValueError, match="indices"):
        text_backbone.query_features(x, indices=torch.tensor([1, 2, 3]))


def test_vision_bypasses_the_cache_unless_enabled():
    bb = tiny_vision_backbone("vit")
    x = make_inputs(bb)
    bb.query_features(x)
    assert bb.query_cache_info()["size"] == 0  # default: augmented images must not be cached
    on = tiny_vision_backbone("vit", query_cache_vision=True)
    a = on.query_features(x)
    assert on.query_cache_info() == {"size": 3, "hits": 0, "misses": 3}
    assert torch.equal(on.query_features(x), a)
    assert on.query_features(x + 1.0, use_cache=False).shape == (3, 32)  # explicit bypass
    assert on.query_cache_info()["size"] == 3


def test_query_cache_off_in_config():
    bb = tiny_text_backbone("bert", query_cache=False)
    bb.query_features(bb.tokenize(["hello"]))
    assert bb.query_cache_info()["size"] == 0


def test_disk_cache_round_trip_and_refusal(tmp_path):
    path = tmp_path / "cache" / "queries.safetensors"
    bb = tiny_text_backbone("bert", query_cache_path=str(path))
    x = bb.tokenize(["save me", "and me"])
    q = bb.query_features(x)
    bb.save_query_cache()
    assert path.is_file() and not path.with_name(path.name + ".tmp").exists()
    reloaded = tiny_text_backbone("bert", query_cache_path=str(path))  # loads at construction
    assert reloaded.query_cache_info()["size"] == 2
    assert torch.equal(reloaded.query_features(x), q)
    assert reloaded.query_cache_info()["misses"] == 0
    other_weights = tiny_text_backbone("bert", seed=1)
    with pytest.raises(ValueError, match="weights"):
        other_weights.load_query_cache(path)
    other_model = tiny_text_backbone("roberta")
    with pytest.raises(ValueError, match="identity"):
        other_model.load_query_cache(path)
    with pytest.raises(FileNotFoundError, match="query_cache_path"):
        bb.load_query_cache(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="empty"):
        tiny_text_backbone("bert").save_query_cache(tmp_path / "empty.safetensors")


def test_weights_fingerprint_tracks_unfrozen_weights():
    bb = tiny_text_backbone("bert")
    first = bb.weights_fingerprint()
    assert bb.weights_fingerprint() == first == tiny_text_backbone("bert").weights_fingerprint()
    bb.model.requires_grad_(True)  # what a fine-tuning copy does
    with torch.no_grad():
        bb.model.embeddings.word_embeddings.weight[0, 0] += 1.0
    assert bb.weights_fingerprint() != first


def test_multi_layer_queries_are_cached_apart_and_saved_with_the_rest(tmp_path):
    bb = tiny_text_backbone("bert")
    x = bb.tokenize(["one sentence", "another one"])
    one = bb.query_features(x)
    two = bb.query_features(x, layers=2)
    assert one.shape == (2, 32) and two.shape == (2, 64)
    assert torch.allclose(two, bb.query_features(x, layers=2, use_cache=False), atol=1e-6)
    assert torch.equal(bb.query_features(x), one)  # not overwritten by the wider rows
    assert bb.query_cache_info() == {"size": 4, "hits": 2, "misses": 4}
    path = tmp_path / "queries.safetensors"
    bb.save_query_cache(path)
    reloaded = tiny_text_backbone("bert")
    assert reloaded.load_query_cache(path) == 4
    assert torch.equal(reloaded.query_features(x, layers=2), two)
    assert torch.equal(reloaded.query_features(x), one)
    assert reloaded.query_cache_info()["misses"] == 0
