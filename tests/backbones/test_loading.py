"""load_backbone from folders and short names; pooling detection; unsupported types."""

import json

import pytest
import torch

from cl_prompts.backbones import BackboneConfig, load_backbone
from cl_prompts.backbones.loading import checkpoint_pooling
from cl_prompts.backbones.testing import tiny_text_backbone, tiny_vision_backbone

from .conftest import make_inputs


def save(bb, folder):
    bb.model.save_pretrained(folder)
    if bb.tokenizer is not None:
        bb.tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("family", ["bert", "distilbert", "deit"])
def test_local_folder_round_trip_gives_the_same_features(tmp_path, family):
    if family == "deit":
        tiny = tiny_vision_backbone(family)
    else:
        tiny = tiny_text_backbone(family)
    loaded = load_backbone(BackboneConfig(name_or_path=save(tiny, tmp_path), local_files_only=True))
    assert loaded.identity()["model_type"] == family
    assert loaded.pooling == tiny.pooling
    x = make_inputs(tiny)
    p = torch.randn(3, 2, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(loaded(x, input_prompts=p).pooled, tiny(x, input_prompts=p).pooled, atol=1e-6)
    assert not any(q.requires_grad for q in loaded.parameters())


def test_sentence_transformers_pooling_is_read_from_the_checkpoint(tmp_path):
    folder = save(tiny_text_backbone("bert"), tmp_path)
    assert checkpoint_pooling(folder) is None
    (tmp_path / "modules.json").write_text(
        json.dumps([{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
                    {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
    )
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    assert checkpoint_pooling(folder) == "cls"
    assert load_backbone(name_or_path=folder, local_files_only=True).pooling == "cls"
    # an explicit choice wins over the checkpoint's
    assert load_backbone(name_or_path=folder, pooling="mean", local_files_only=True).pooling == "mean"


def test_pooling_defaults_without_checkpoint_hint():
    assert tiny_text_backbone("bert").pooling == "mean"
    assert tiny_vision_backbone("vit").pooling == "cls"


def test_cls_pooling_is_the_first_token():
    bb = tiny_text_backbone("bert", pooling="cls")
    out = bb(make_inputs(bb))
    assert torch.equal(out.pooled, out.hidden[:, 0])


def test_tiny_short_names_are_deterministic():
    a = load_backbone(name_or_path="tiny-roberta")
    b = tiny_text_backbone("roberta")
    x = make_inputs(a)
    assert torch.equal(a(x).pooled, b(x).pooled)
    assert a.identity()["name_or_path"] == "tiny-roberta"


def test_unsupported_model_type_is_refused_with_the_supported_list(tmp_path):
    from transformers import T5Config

    T5Config(num_layers=1, d_model=32, num_heads=2).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"'t5'.*bert.*deit.*distilbert.*roberta.*vit.*causal LMs: gpt2"):
        load_backbone(name_or_path=str(tmp_path), local_files_only=True)
    with pytest.raises(ValueError, match="supported families"):
        load_backbone(name_or_path="tiny-t5")


def test_load_backbone_rejects_a_non_config():
    with pytest.raises(TypeError, match="BackboneConfig"):
        load_backbone({"name_or_path": "minilm"})
