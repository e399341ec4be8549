"""load_backbone from folders and short names; pooling detection; unsupported types."""

import json
import re

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


@pytest.mark.parametrize("pooling", ["text", "last"])
def test_an_encoder_refuses_the_causal_lm_poolings(pooling):
    with pytest.raises(ValueError, match=f"got pooling='{pooling}'; 'text' and 'last' are for causal LMs"):
        load_backbone(name_or_path="tiny-bert", pooling=pooling)


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


# --- a hub id without the network: read from the cache only, one clear line when it is not there

NOT_CACHED = "cl-prompts-tests/no-such-model"


@pytest.fixture()
def no_network(monkeypatch):
    """The hub does not answer and no name can be looked up (on any machine); returns the list
    of the waits a retry loop would make (huggingface_hub sleeps between its five tries)."""
    import socket
    import time

    from cl_prompts.backbones import loading

    def refuse(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "no network in this test")

    waits = []
    monkeypatch.setattr(loading, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(time, "sleep", waits.append)
    return waits


def _spy_from_pretrained(monkeypatch, cls, result=None):
    """Record the kwargs of ``cls.from_pretrained`` (AutoConfig, ...); call the real one unless
    ``result`` (an exception to raise) is given."""
    from cl_prompts.backbones import loading

    calls, real = [], getattr(loading, cls).from_pretrained

    def spy(source, *args, **kwargs):
        calls.append(kwargs)
        if result is not None:
            raise result
        return real(source, *args, **kwargs)

    monkeypatch.setattr(getattr(loading, cls), "from_pretrained", spy)
    return calls


def test_a_hub_id_offline_fails_at_once_with_one_line_naming_the_way_out(monkeypatch, no_network):
    from cl_prompts.backbones.loading import ModelNotAvailableOffline

    calls = _spy_from_pretrained(monkeypatch, "AutoConfig")
    with pytest.raises(ModelNotAvailableOffline) as caught:
        load_backbone(name_or_path=NOT_CACHED)
    message = str(caught.value)
    assert isinstance(caught.value, OSError)  # the CLI prints an OSError as one line, exit 2
    assert "\n" not in message
    assert f"{NOT_CACHED!r} is not available offline" in message
    assert "local model folder" in message and "'minilm'" in message
    # read from the cache only: no request for the model's files, so no retry loop
    assert calls == [{"local_files_only": True, "trust_remote_code": False}]
    assert no_network == []


def test_a_causal_hub_id_offline_is_read_from_the_cache_only_too(monkeypatch, no_network):
    from transformers import GPT2Config

    from cl_prompts.backbones import causal_loading, loading

    def not_cached(source, **kwargs):
        raise OSError(f"local_files_only={kwargs['local_files_only']}")

    monkeypatch.setattr(loading.AutoConfig, "from_pretrained", lambda *a, **k: GPT2Config())
    monkeypatch.setattr(causal_loading.AutoModelForCausalLM, "from_pretrained", not_cached)
    with pytest.raises(loading.ModelNotAvailableOffline, match="not available offline") as caught:
        load_backbone(name_or_path=NOT_CACHED)
    assert str(caught.value.__cause__) == "local_files_only=True"
    assert no_network == []


def test_a_hub_id_online_is_loaded_as_before(monkeypatch):
    """When the hub answers, from_pretrained may use the network and its own errors come through."""
    from cl_prompts.backbones import loading

    monkeypatch.setattr(loading, "hub_reachable", lambda *a, **k: True)
    calls = _spy_from_pretrained(monkeypatch, "AutoConfig", result=OSError("the hub's own error"))
    with pytest.raises(OSError, match="the hub's own error") as caught:
        load_backbone(name_or_path=NOT_CACHED)
    assert not isinstance(caught.value, loading.ModelNotAvailableOffline)
    assert calls == [{"local_files_only": False, "trust_remote_code": False}]


def test_folders_and_local_files_only_never_ask_the_hub(tmp_path, monkeypatch):
    from cl_prompts.backbones import loading

    def no_probe(*a, **k):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(loading, "hub_reachable", no_probe)
    folder = save(tiny_text_backbone("bert"), tmp_path)
    assert load_backbone(name_or_path=folder).identity()["model_type"] == "bert"
    calls = _spy_from_pretrained(monkeypatch, "AutoConfig", result=OSError("not cached"))
    with pytest.raises(OSError, match="not cached") as caught:  # the user asked for the cache only
        load_backbone(name_or_path=NOT_CACHED, local_files_only=True)
    assert not isinstance(caught.value, loading.ModelNotAvailableOffline)
    assert calls == [{"local_files_only": True, "trust_remote_code": False}]


@pytest.mark.parametrize("path", ["/no/such/model", "./models/missing", "~/missing", "org/name/extra"])
def test_a_missing_folder_is_named_as_one_without_asking_the_hub(path, monkeypatch):
    from cl_prompts.backbones import loading

    def no_probe(*a, **k):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(loading, "hub_reachable", no_probe)
    with pytest.raises(FileNotFoundError, match=f"backbone folder not found: {re.escape(path)}"):
        load_backbone(name_or_path=path)


def test_image_statistics_offline_read_the_cache_only(monkeypatch, no_network):
    from types import SimpleNamespace

    import transformers

    from cl_prompts.backbones.loading import DEFAULT_IMAGE_MEAN, DEFAULT_IMAGE_STD, image_statistics

    calls = []

    def spy(name, **kwargs):
        calls.append(kwargs["local_files_only"])
        raise OSError("not cached")

    monkeypatch.setattr(transformers.AutoImageProcessor, "from_pretrained", spy)
    backbone = SimpleNamespace(config=SimpleNamespace(name_or_path=NOT_CACHED, local_files_only=False))
    assert image_statistics(backbone) == (DEFAULT_IMAGE_MEAN, DEFAULT_IMAGE_STD)
    assert calls == [True]


class _Session:
    def __init__(self, head):
        self.head = head


def test_hub_reachable_asks_once_and_gives_up_at_the_timeout(monkeypatch):
    import threading

    import huggingface_hub
    import huggingface_hub.utils

    from cl_prompts.backbones.loading import hub_reachable

    asked = []

    def answer(url, timeout):
        asked.append((url, timeout))

    def fail(url, timeout):
        raise ConnectionError("no route")

    release = threading.Event()

    def hang(url, timeout):
        release.wait(10)

    monkeypatch.setattr(huggingface_hub, "is_offline_mode", lambda: False)
    monkeypatch.setattr(huggingface_hub.utils, "get_session", lambda: _Session(answer))
    assert hub_reachable(timeout=5.0) is True
    assert asked == [(huggingface_hub.constants.ENDPOINT, 5.0)]
    monkeypatch.setattr(huggingface_hub.utils, "get_session", lambda: _Session(fail))
    assert hub_reachable(timeout=5.0) is False
    monkeypatch.setattr(huggingface_hub.utils, "get_session", lambda: _Session(hang))
    try:
        assert hub_reachable(timeout=0.05) is False  # a lookup that hangs does not hold the caller
    finally:
        release.set()
    # offline mode (HF_HUB_OFFLINE=1): not asked at all
    asked.clear()
    monkeypatch.setattr(huggingface_hub.utils, "get_session", lambda: _Session(answer))
    monkeypatch.setattr(huggingface_hub, "is_offline_mode", lambda: True)
    assert hub_reachable() is False and asked == []
