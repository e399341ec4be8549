"""cl_prompts.run.loop: the frozen queries of an experience's training samples, computed ahead."""

import pytest
import torch

from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.data import synthetic_text_dataset
from cl_prompts.methods import build_model
from cl_prompts.run import RunConfig
from cl_prompts.run.loop import TokenizedStream, cache_training_queries, train_experience

OPTIONS = {"growing_pool": {"projection_dim": 64, "ridge": 1.0, "prompted_ridge": 1.0}}


class NoBar:
    def update(self, n):
        pass

    def set_postfix(self, **kwargs):
        pass


def _setup(method):
    data = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=9, test_per_class=2)
    backbone = tiny_text_backbone()
    stream = TokenizedStream(data, backbone, "cpu")
    model = build_model(method, backbone, 4, **OPTIONS.get(method, {}))
    return backbone, stream, model


@pytest.mark.parametrize("method", ["growing_pool", "ranpac", "l2p"])
def test_training_finds_every_query_in_the_cache(method):
    backbone, stream, model = _setup(method)
    idx = stream.indices("train", 0)
    cache_training_queries(model, stream, idx, batch_size=5)
    layers = model.frozen_query_layers()
    info = backbone.query_cache_info()
    assert info["size"] == len(idx) and info["hits"] == 0
    model.begin_experience(0, stream.experiences[0])
    train_experience(model, stream, 0, RunConfig(method=method, batch_size=4, eval_batch_size=5), NoBar())
    after = backbone.query_cache_info()
    assert after["size"] == len(idx) and after["misses"] == info["misses"]  # nothing computed again
    assert after["hits"] >= len(idx)
    # the rows computed ahead, in sorted batches of 5, are each sample's own query
    x, _ = stream.batch("train", idx[:3])
    alone = torch.cat([backbone(stream.batch("train", idx[i : i + 1])[0], layers=layers).layer_features()
                       for i in range(3)])
    assert torch.allclose(backbone.query_features(x, layers=layers), alone, atol=1e-5)


def test_a_method_that_reads_no_query_computes_none_ahead():
    backbone, stream, model = _setup("prompt_tuning")
    assert model.frozen_query_layers() is None
    cache_training_queries(model, stream, stream.indices("train", 0), batch_size=5)
    assert backbone.query_cache_info()["size"] == 0


def test_nothing_is_computed_ahead_with_the_cache_off():
    data = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=9, test_per_class=2)
    backbone = tiny_text_backbone(query_cache=False)
    stream = TokenizedStream(data, backbone, "cpu")
    model = build_model("ranpac", backbone, 4)
    calls = []
    backbone.query_features = lambda *a, **k: calls.append(1)
    cache_training_queries(model, stream, stream.indices("train", 0), batch_size=5)
    assert calls == []
