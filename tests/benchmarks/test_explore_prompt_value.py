"""benchmarks/explore_prompt_value.py: its score, its ridge readouts and its prompt training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cl_prompts.backbones.testing import tiny_text_backbone


@pytest.fixture(scope="module")
def probe(benchmark_script):
    return benchmark_script("explore_prompt_value")


@pytest.fixture
def toy(probe, monkeypatch):
    """A tiny backbone read at 2 layers, its weights as they start, 12 tokenized sentences, 3 labels."""
    monkeypatch.setattr(probe, "LAYERS", 2)
    bb = tiny_text_backbone()
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    return bb, before, bb.tokenize([f"sentence number {i}" for i in range(12)]), torch.arange(12) % 3


def test_score_is_the_mean_over_experiences_of_their_accuracy(probe):
    y = torch.tensor([0, 0, 1, 2, 2, 2])
    logits = F.one_hot(torch.tensor([0, 1, 1, 2, 0, 0]), 3).float()  # exp [0,1]: 2/3 right; exp [2]: 1/3
    assert probe.score(logits, y, [[0, 1], [2]]) == pytest.approx(50.0)


def test_ridge_logits_depend_on_the_projection_seed_only(probe):
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(80) % 4
    x = torch.randn(80, 16, generator=gen) + 10 * F.one_hot(y, 16).float()
    a = probe.ridge_logits(x[:60], y[:60], x[60:], 4, seed=1, dim=64)
    assert a.shape == (20, 4)
    torch.testing.assert_close(a, probe.ridge_logits(x[:60], y[:60], x[60:], 4, seed=1, dim=64))
    assert not torch.allclose(a, probe.ridge_logits(x[:60], y[:60], x[60:], 4, seed=2, dim=64))
    easy = probe.ridge_logits(x[:60], y[:60], x[60:], 4, seed=1, ridge=1.0, dim=256)
    assert probe.score(easy, y[60:], [[0, 1, 2, 3]]) >= 95  # well-separated classes, light ridge


def test_train_prompt_changes_the_prompt_and_leaves_the_backbone_frozen(probe, toy):
    bb, before, tokens, y = toy
    init = torch.zeros(4, bb.hidden_size)
    prompt = probe.train_prompt(bb, tokens, y, [0, 1], init, epochs=1, lr=1e-2, seed=0)
    assert prompt.shape == init.shape and not torch.equal(prompt, init) and torch.equal(init, torch.zeros_like(init))
    assert all(torch.equal(before[k], v) for k, v in bb.state_dict().items())
    feats = probe.features(bb, tokens, prompt)
    assert feats.shape == (12, 2 * bb.hidden_size)
    assert not torch.allclose(feats, probe.features(bb, tokens, None))


def test_prefix_prompts_cover_every_layer_and_train_like_input_prompts(probe, monkeypatch):
    monkeypatch.setattr(probe, "LAYERS", 2)
    bb = tiny_text_backbone()
    init = probe.initial_prompt(bb, "prefix", 3, seed=0)
    assert init.shape == (bb.num_layers, 2, 3, bb.hidden_size) and -1 <= init.min() and init.max() <= 1
    assert probe.initial_prompt(bb, "input", 5, seed=0).shape == (5, bb.hidden_size)
    tokens = bb.tokenize([f"sentence number {i}" for i in range(12)])
    y = torch.arange(12) % 3
    prompt = probe.train_prompt(bb, tokens, y, [0, 1, 2], init, epochs=1, lr=1e-2, seed=0)
    assert prompt.shape == init.shape and not torch.equal(prompt, init)
    base = probe.features(bb, tokens, init)
    assert not torch.allclose(base, probe.features(bb, tokens, None))
    for layer in range(bb.num_layers):  # every layer's prefix is read
        moved = init.clone()
        moved[layer] += 1.0
        assert not torch.allclose(probe.features(bb, tokens, moved), base)


def test_finetune_encoder_trains_a_copy_and_leaves_the_backbone_frozen(probe, toy):
    bb, before, tokens, y = toy
    tuned = probe.finetune_encoder(bb, tokens, y, [0, 1, 2], epochs=1, lr=1e-3, seed=0)
    assert all(torch.equal(before[k], v) for k, v in bb.state_dict().items())
    assert tuned is not bb and not any(p.requires_grad for p in tuned.parameters())
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(before[k], v)]
    assert any("encoder.layer.0" in k for k in changed) and any("encoder.layer.1" in k for k in changed)
    feats = probe.features(tuned, tokens, None)
    assert feats.shape == (12, 2 * bb.hidden_size)
    assert not torch.allclose(feats, probe.features(bb, tokens, None))
