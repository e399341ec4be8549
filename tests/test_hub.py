"""cl_prompts.hub: a hub id that cannot load now is named before torch is imported."""

from __future__ import annotations

import pytest

from cl_prompts import hub


@pytest.fixture
def probes(monkeypatch):
    """Counts hub probes; the hub never answers."""
    calls = []
    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: calls.append(1) or False)
    return calls


@pytest.mark.parametrize("name", ["minilm", "smollm2", "tiny-bert", "/no/such/folder", "./rel", "a/b/c"])
def test_local_names_and_paths_never_probe_the_hub(name, probes):
    assert hub.unavailable_hub_id(name) is None  # a missing folder is the loader's error to name
    assert probes == []


def test_an_existing_folder_is_local(tmp_path, probes):
    assert hub.unavailable_hub_id(str(tmp_path)) is None and probes == []


def test_an_uncached_hub_id_out_of_reach_gets_one_line_naming_the_way_out(probes, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda *a, **k: None)
    message = hub.unavailable_hub_id("org/model")
    assert probes == [1] and "\n" not in message
    assert message.startswith("backbone 'org/model' is not available offline") and "'minilm'" in message


def test_a_cached_hub_id_loads_offline(probes, monkeypatch):
    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda *a, **k: "/cache/config.json")
    assert hub.unavailable_hub_id("org/model") is None and probes == []


def test_the_probe_says_unreachable_in_offline_mode(monkeypatch):
    monkeypatch.setattr("huggingface_hub.is_offline_mode", lambda: True)
    assert hub.hub_reachable() is False
