"""The real offline default (slow: loads MiniLM-L6)."""

import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm():
    from cl_prompts.backbones import default_backbone

    return default_backbone()


def test_default_is_minilm_with_mean_pooling(minilm):
    assert minilm.identity() == {
        "name_or_path": "minilm", "model_type": "bert", "hidden_size": 384, "num_layers": 6, "pooling": "mean",
    }
    assert minilm.num_heads == 12 and minilm.modality == "text"


def test_paraphrases_are_closer_than_unrelated_sentences(minilm):
    x = minilm.tokenize(
        ["how do I reset my password", "what are the steps to change my password", "is it going to rain in paris"]
    )
    q = torch.nn.functional.normalize(minilm.query_features(x), dim=-1)
    sim = q @ q.T
    assert sim[0, 1] > 0.6 and sim[0, 2] < 0.3 and sim[0, 1] > sim[0, 2] + 0.3


def test_matches_plain_transformers_mean_pooling(minilm):
    from transformers import AutoModel

    from cl_prompts.backbones.loading import minilm_path

    ref_model = AutoModel.from_pretrained(minilm_path()).eval()
    x = minilm.tokenize(["book a table for two", "what's my credit score"])
    with torch.no_grad():
        h = ref_model(**x).last_hidden_state
    w = x["attention_mask"].unsqueeze(-1).float()
    assert torch.allclose(minilm.query_features(x), (h * w).sum(1) / w.sum(1), atol=1e-5)


def test_prompts_steer_minilm_and_keep_it_frozen(minilm):
    x = minilm.tokenize(["transfer money to my savings"])
    before = minilm.model.encoder.layer[0].attention.self.key.weight.clone()
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(1, 5, 384, generator=gen).requires_grad_()
    out = minilm(x, input_prompts=p, prefix_prompts={0: torch.randn(1, 2, 5, 384, generator=gen)})
    out.prompt_pooled.sum().backward()
    assert p.grad.abs().sum() > 0
    assert not torch.allclose(out.pooled, minilm.query_features(x), atol=1e-3)
    assert torch.equal(before, minilm.model.encoder.layer[0].attention.self.key.weight)
