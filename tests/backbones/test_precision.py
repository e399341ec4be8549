"""Mixed precision: autocast inside the encoder only, fp32 features out, prompt gradients in fp32."""

import pytest
import torch

from cl_prompts.backbones import BackboneConfig
from cl_prompts.backbones import precision as prec
from cl_prompts.backbones.testing import tiny_text_backbone, tiny_vision_backbone

from .conftest import make_inputs


@pytest.fixture
def fresh_text():
    bb = tiny_text_backbone()
    yield bb
    bb.set_precision("fp32")


def test_auto_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: True)
    assert prec.resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: False)
    assert prec.resolve_precision("auto", "cpu") == "fp32"
    for name in ("fp32", "bf16", "fp16"):
        assert prec.resolve_precision(name, "cpu") == name


def test_unknown_precision_is_refused_with_the_choices(fresh_text):
    with pytest.raises(ValueError, match=r"precision must be one of \['fp32', 'bf16', 'fp16', 'auto'\], got 'fp8'"):
        BackboneConfig(precision="fp8")
    with pytest.raises(ValueError, match="precision must be one of"):
        fresh_text.set_precision("half")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("make", [tiny_text_backbone, tiny_vision_backbone])
def test_low_precision_features_are_fp32_and_close_to_exact(make, precision):
    bb = make()
    x = make_inputs(bb)
    prompts = torch.randn(3, 4, bb.hidden_size) * 0.02
    exact = bb(x, input_prompts=prompts, layers=2)
    bb.set_precision(precision)
    low = bb(x, input_prompts=prompts, layers=2)
    for a, b in ((exact.pooled, low.pooled), (exact.hidden, low.hidden), (exact.layer_pooled, low.layer_pooled)):
        assert b.dtype == torch.float32
        assert not torch.equal(a, b), "autocast changed nothing: the encoder did not run in low precision"
        rel = (a - b).norm() / a.norm()
        assert rel < 0.05, f"{precision} features differ from fp32 by {rel:.3f} (relative)"


def test_prompt_gradient_is_fp32_and_the_encoder_stays_frozen(fresh_text):
    fresh_text.set_precision("bf16")
    before = {k: v.clone() for k, v in fresh_text.model.state_dict().items()}
    prompts = torch.nn.Parameter(torch.randn(1, 4, fresh_text.hidden_size) * 0.02)
    out = fresh_text(make_inputs(fresh_text), input_prompts=prompts.expand(3, -1, -1))
    out.pooled.pow(2).sum().backward()
    assert prompts.grad is not None and prompts.grad.dtype == torch.float32
    assert torch.isfinite(prompts.grad).all() and prompts.grad.abs().sum() > 0
    assert all(p.grad is None for p in fresh_text.model.parameters())
    assert all(torch.equal(before[k], v) for k, v in fresh_text.model.state_dict().items())


def test_a_precision_change_drops_the_cached_queries(fresh_text):
    x = make_inputs(fresh_text)
    exact = fresh_text.query_features(x)
    fresh_text.set_precision("bf16")
    assert fresh_text.query_cache_info()["size"] == 0
    low = fresh_text.query_features(x)
    assert not torch.equal(exact, low)
    fresh_text.set_precision("bf16")  # the same precision again keeps the cache
    assert fresh_text.query_cache_info()["size"] == 3


def test_a_cache_file_of_another_precision_is_refused(fresh_text, tmp_path):
    path = tmp_path / "q.safetensors"
    fresh_text.set_precision("bf16")
    fresh_text.query_features(make_inputs(fresh_text))
    fresh_text.save_query_cache(path)
    fresh_text.set_precision("fp32")
    with pytest.raises(ValueError, match="was written for precision='bf16', this backbone has precision='fp32'"):
        fresh_text.load_query_cache(path)


def test_a_cache_file_without_precision_is_read_as_fp32(fresh_text, tmp_path, monkeypatch):
    path = tmp_path / "q.safetensors"
    fresh_text.query_features(make_inputs(fresh_text))
    metadata = fresh_text._cache_metadata()
    monkeypatch.setattr(fresh_text, "_cache_metadata", lambda: {k: v for k, v in metadata.items() if k != "precision"})
    fresh_text.save_query_cache(path)  # as written before the precision was recorded
    monkeypatch.undo()
    fresh_text.clear_query_cache()
    assert fresh_text.load_query_cache(path) == 3
    fresh_text.set_precision("bf16")
    with pytest.raises(ValueError, match="precision='fp32'"):
        fresh_text.load_query_cache(path)


def test_fp16_scales_the_loss_and_other_precisions_do_not():
    assert prec.grad_scaler("fp16", "cpu").is_enabled()
    for name in ("fp32", "bf16"):
        assert not prec.grad_scaler(name, "cpu").is_enabled()
