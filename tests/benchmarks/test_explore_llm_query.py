"""benchmarks/explore_llm_query.py: its pooled hidden states are the library's query features."""

from __future__ import annotations

import pytest
import torch

from cl_prompts.backbones import CausalLMConfig
from cl_prompts.backbones.testing import tiny_causal_lm

TEXTS = ["book a flight to paris", "what is my balance", "set an alarm for six in the morning please", "hi"]


@pytest.fixture(scope="module")
def explore(benchmark_script):
    return benchmark_script("explore_llm_query")


@pytest.mark.parametrize("pooling", ["text", "mean", "last"])
def test_every_layer_pooled_equals_the_backbone_s_query_at_that_layer(explore, pooling):
    base = tiny_causal_lm("llama", CausalLMConfig(name_or_path="tiny-llama"), chat=True)
    pooled = explore.pooled_layers(base, TEXTS, batch=3)[pooling]  # (N, 3, D): embeddings and 2 blocks
    assert pooled.shape == (len(TEXTS), 3, base.hidden_size) and pooled.dtype == torch.float16
    for layer in (1, 2):
        lm = tiny_causal_lm("llama", CausalLMConfig(name_or_path="tiny-llama", query_pooling=pooling,
                                                    query_layer=layer), chat=True)
        want = lm.query_features(lm.tokenize(TEXTS), use_cache=False)
        torch.testing.assert_close(pooled[:, layer].float(), want, atol=2e-2, rtol=2e-3)  # float16 storage


def test_windows_are_unit_rows_and_task_accuracy_counts_the_experience(explore):
    x = torch.randn(5, 4, 3)
    w = explore.window(x, end=3, width=2)  # hidden states 2 and 3
    assert w.shape == (5, 6)
    torch.testing.assert_close(w[:, :3].norm(dim=1), torch.ones(5, dtype=torch.float64))
    logits = torch.tensor([[0.0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
    y = torch.tensor([0, 0, 2, 3])  # predicted 1 (same experience), 0, 3 (same), 2 (same)
    assert explore.task_accuracy(logits, y, [[0, 1], [2, 3]]) == 100.0
    assert explore.task_accuracy(logits, y, [[0], [1], [2, 3]]) == 75.0
