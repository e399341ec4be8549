"""Shapes, prompt injection (input and prefix), padding invariance."""

import pytest
import torch

from cl_prompts.backbones import BackboneOutput, to_device
from cl_prompts.backbones.attention import prefixes_set

from .conftest import make_inputs, single

ATOL = 1e-5


def prompts(bb, batch, length=3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, bb.hidden_size, generator=gen)


def prefixes(bb, batch, length=4, seed=2):
    gen = torch.Generator().manual_seed(seed)
    return {layer: torch.randn(batch, 2, length, bb.hidden_size, generator=gen) for layer in range(bb.num_layers)}


def test_sizes_are_read_from_the_model_config(backbone):
    assert (backbone.hidden_size, backbone.num_layers, backbone.num_heads) == (32, 2, 4)
    ident = backbone.identity()
    assert {"name_or_path", "model_type", "hidden_size", "num_layers"} <= set(ident)
    assert ident["model_type"] == backbone.model.config.model_type


def test_output_shapes_and_prompt_layout(backbone):
    x = make_inputs(backbone)
    plain = backbone(x)
    assert isinstance(plain, BackboneOutput) and plain.prompt_pooled is None
    t = plain.hidden.shape[1]
    assert plain.pooled.shape == (3, 32) and plain.mask.shape == (3, t)
    out = backbone(x, input_prompts=prompts(backbone, 3), prefix_prompts=prefixes(backbone, 3))
    assert out.hidden.shape == (3, t + 3, 32)
    assert out.prompt_pooled.shape == (3, 32) and out.mask.shape == (3, t + 3)
    s = backbone.family.num_special
    assert torch.equal(out.mask[:, s : s + 3], torch.ones(3, 3, dtype=torch.long))
    assert torch.allclose(out.prompt_pooled, out.hidden[:, s : s + 3].mean(1))


def test_each_kind_of_prompt_changes_the_features(backbone):
    x = make_inputs(backbone)
    base = backbone(x).pooled
    with_input = backbone(x, input_prompts=prompts(backbone, 3)).pooled
    with_prefix = backbone(x, prefix_prompts={1: prefixes(backbone, 3)[1]}).pooled
    assert (with_input - base).abs().max() > 1e-3
    assert (with_prefix - base).abs().max() > 1e-3
    # and the module state is clean afterwards: no prompt leaks into the next call
    assert torch.allclose(backbone(x).pooled, base, atol=ATOL)


@pytest.mark.parametrize("mode", ["none", "input", "prefix", "both"])
def test_padded_batch_equals_each_sequence_alone(backbone, mode):
    x = make_inputs(backbone)
    p = prompts(backbone, 3) if mode in ("input", "both") else None
    k = prefixes(backbone, 3) if mode in ("prefix", "both") else None
    batch = backbone(x, input_prompts=p, prefix_prompts=k)
    for i in range(3):
        alone = backbone(
            single(x, i),
            input_prompts=None if p is None else p[i : i + 1],
            prefix_prompts=None if k is None else {layer: v[i : i + 1] for layer, v in k.items()},
        )
        assert torch.allclose(batch.pooled[i], alone.pooled[0], atol=ATOL)
        n = alone.hidden.shape[1]
        assert torch.allclose(batch.hidden[i, :n], alone.hidden[0], atol=ATOL)
        if p is not None:
            assert torch.allclose(batch.prompt_pooled[i], alone.prompt_pooled[0], atol=ATOL)


def test_all_padding_columns_are_trimmed_before_the_model(text_backbone):
    x = text_backbone.tokenize(["short one", "a slightly longer sentence"])
    assert x["input_ids"].shape[1] == text_backbone.config.max_length
    seen = []
    handle = text_backbone.model.embeddings.register_forward_hook(lambda m, a, out: seen.append(out.shape[1]))
    try:
        text_backbone(x)
    finally:
        handle.remove()
    assert seen == [int(x["attention_mask"].sum(1).max())]


def test_batch_of_one_prompts_broadcast(backbone):
    x = make_inputs(backbone)
    p = prompts(backbone, 1)
    a = backbone(x, input_prompts=p).pooled
    b = backbone(x, input_prompts=p.expand(3, -1, -1)).pooled
    assert torch.allclose(a, b, atol=ATOL)


def test_input_prompts_are_inserted_after_the_cls_token():
    from .conftest import _tiny

    bb = _tiny("bert")
    x = single(make_inputs(bb), 0)
    p = prompts(bb, 1)
    emb = bb.model.embeddings(input_ids=x["input_ids"])  # (1, T, D)
    seen = []
    handle = bb._attention[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        bb(x, input_prompts=p)
    finally:
        handle.remove()
    expected = torch.cat([emb[:, :1], p, emb[:, 1:]], dim=1)
    assert torch.allclose(seen[0], expected, atol=ATOL)


def test_prefix_attention_matches_a_hand_written_reference():
    from .conftest import _tiny

    bb = _tiny("bert")
    attn = bb._attention[0]  # BertSelfAttention: query/key/value projections
    gen = torch.Generator().manual_seed(3)
    h = torch.randn(2, 5, 32, generator=gen)
    prefix = torch.randn(2, 2, 4, 32, generator=gen)
    with prefixes_set(bb._attention, {0: prefix}):
        got = attn(h)[0]  # (2, 5, 32)

    def heads(t):  # (B, S, 32) -> (B, 4, S, 8)
        return t.view(t.shape[0], t.shape[1], 4, 8).transpose(1, 2)

    q = heads(attn.query(h))
    k = heads(torch.cat([prefix[:, 0], attn.key(h)], dim=1))
    v = heads(torch.cat([prefix[:, 1], attn.value(h)], dim=1))
    weights = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)
    expected = (weights @ v).transpose(1, 2).reshape(2, 5, 32)
    assert torch.allclose(got, expected, atol=ATOL)
    assert not hasattr(attn, "_cl_prompts_prefix")


def test_bad_prompt_shapes_raise(backbone):
    x = make_inputs(backbone)
    with pytest.raises(ValueError, match="input_prompts"):
        backbone(x, input_prompts=torch.zeros(3, 2, 31))
    with pytest.raises(ValueError, match="input_prompts"):
        backbone(x, input_prompts=torch.zeros(2, 2, 32))
    with pytest.raises(ValueError, match="prefix_prompts"):
        backbone(x, prefix_prompts={backbone.num_layers: torch.zeros(3, 2, 1, 32)})
    with pytest.raises(ValueError, match=r"prefix_prompts\[0\]"):
        backbone(x, prefix_prompts={0: torch.zeros(3, 1, 32)})


def test_bad_inputs_raise(backbone):
    if backbone.modality == "text":
        with pytest.raises(TypeError, match="input_ids"):
            backbone(torch.zeros(2, 3, 32, 32))
        with pytest.raises(ValueError, match="attention_mask"):
            backbone({"input_ids": torch.ones(2, 4, dtype=torch.long), "attention_mask": torch.ones(2, 3)})
    else:
        with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
            backbone(torch.zeros(3, 32, 32))
        with pytest.raises(ValueError, match="text"):
            backbone.tokenize(["a"])


def test_tokenize_gives_fixed_length_long_tensors(text_backbone):
    x = text_backbone.tokenize(["hi", "hello there"])
    assert set(x) == {"input_ids", "attention_mask"}
    assert x["input_ids"].shape == (2, 64) and x["input_ids"].dtype == torch.long
    assert x["attention_mask"].sum(1).tolist() == [3, 4]  # [CLS] hi [SEP]; [CLS] hello there [SEP]
    with pytest.raises(TypeError, match="texts"):
        text_backbone.tokenize("not a list")


def test_to_device_moves_both_forms():
    x = {"input_ids": torch.ones(1, 2, dtype=torch.long), "attention_mask": torch.ones(1, 2)}
    moved = to_device(x, "cpu")
    assert set(moved) == set(x) and moved["input_ids"].device.type == "cpu"
    assert to_device(torch.zeros(1, 3, 2, 2), torch.device("cpu")).shape == (1, 3, 2, 2)
    from transformers import BatchEncoding

    encoded = to_device(BatchEncoding(x), "cpu")  # the mapping type a tokenizer returns is kept
    assert isinstance(encoded, BatchEncoding) and torch.equal(encoded["input_ids"], x["input_ids"])
    with pytest.raises(TypeError, match="inputs"):
        to_device([1, 2], "cpu")


def test_layer_features_pool_the_last_layers_at_unit_length(backbone):
    x = make_inputs(backbone)
    out = backbone(x, input_prompts=prompts(backbone, 3), layers=2)
    assert out.layer_pooled.shape == (3, 2, 32)
    assert torch.allclose(out.layer_pooled[:, -1], out.pooled)  # the last row is the usual feature
    assert not torch.allclose(out.layer_pooled[:, 0], out.pooled)
    feats = out.layer_features()  # (B, 2 * D)
    assert feats.shape == (3, 64)
    assert torch.allclose(feats.view(3, 2, 32).norm(dim=-1), torch.ones(3, 2), atol=1e-5)
    assert torch.equal(backbone(x).layer_features(), backbone(x).pooled)  # one layer: unscaled
    more = backbone(x, layers=9)  # more layers than the model has: all of them
    assert more.layer_pooled.shape == (3, backbone.num_layers, 32)


@pytest.mark.parametrize("layers", [0, -1, 1.5, True])
def test_layers_must_be_a_positive_int(backbone, layers):
    with pytest.raises(ValueError, match="layers"):
        backbone(make_inputs(backbone), layers=layers)
