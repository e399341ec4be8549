"""save_pretrained / from_pretrained: round trip, atomicity, refusals."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from cl_prompts.pool import PoolConfig, PromptPool, pool_from_tensors, pool_to_tensors
from cl_prompts.pool import io as pool_io

D, L = 16, 2


def trained_pool(index="flat", trainable=True) -> PromptPool:
    torch.manual_seed(0)
    pool = PromptPool(PoolConfig(embed_dim=D, prompt_length=L, top_k=3, index=index))
    pool.train()
    pool.add_task(6)
    pool.select(torch.randn(5, D))
    pool.add_task(5)
    pool.select(torch.randn(5, D))
    if not trainable:
        pool.freeze()
    return pool


@pytest.mark.parametrize("index,trainable", [("flat", True), ("flat", False), ("HNSW16", True)])
def test_round_trip_selects_identically(tmp_path, index, trainable):
    pool = trained_pool(index, trainable)
    pool.save_pretrained(tmp_path / "p")
    loaded = PromptPool.from_pretrained(tmp_path / "p")
    assert loaded.config == pool.config and loaded.task_sizes == pool.task_sizes
    for name in ("frozen_prompts", "frozen_keys", "usage", "usage_at_task_start"):
        assert torch.equal(getattr(loaded, name), getattr(pool, name)), name
    assert len(loaded.trainable_parameters()) == (2 if trainable else 0)
    q = torch.randn(20, D)
    pool.eval(), loaded.eval()
    a, b = pool.select(q), loaded.select(q)
    assert torch.equal(a.ids, b.ids) and torch.equal(a.prompts.detach(), b.prompts.detach())


def test_files_are_safetensors_and_json(tmp_path):
    pool = trained_pool()
    pool.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "pool.safetensors"]
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["config"]["embed_dim"] == D and cfg["task_sizes"] == [6, 5]
    tensors = load_file(tmp_path / "pool.safetensors")
    assert tensors["keys"].shape == (5, D)


def test_crash_mid_save_leaves_previous_save(tmp_path, monkeypatch):
    pool = trained_pool()
    pool.save_pretrained(tmp_path)
    before = (tmp_path / "pool.safetensors").read_bytes()

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr("safetensors.torch.save_file", crash)
    pool.add_task(2)
    with pytest.raises(KeyboardInterrupt):
        pool.save_pretrained(tmp_path)
    assert (tmp_path / "pool.safetensors").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["config.json", "pool.safetensors"]  # no temp left
    assert PromptPool.from_pretrained(tmp_path).task_sizes == [6, 5]


def test_config_mismatch_refused(tmp_path):
    trained_pool().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="embed_dim=16, config asks for embed_dim=32"):
        PromptPool.from_pretrained(tmp_path, config=PoolConfig(embed_dim=32, prompt_length=L))
    with pytest.raises(ValueError, match="prompt_length=2, config asks for prompt_length=4"):
        PromptPool.from_pretrained(tmp_path, config=PoolConfig(embed_dim=D, prompt_length=4))
    # non-structural fields may change at load time, e.g. the index
    p = PromptPool.from_pretrained(tmp_path, config=PoolConfig(embed_dim=D, prompt_length=L, index="torch"))
    assert p.index.spec == "torch"


def test_shape_mismatch_refused(tmp_path):
    pool = trained_pool()
    pool.save_pretrained(tmp_path)
    tensors, meta = pool_to_tensors(pool)
    tensors["frozen_keys"] = tensors["frozen_keys"][:, :8].contiguous()
    save_file(tensors, tmp_path / "pool.safetensors", metadata=meta)
    with pytest.raises(ValueError, match=r"'frozen_keys' has shape \(6, 8\), expected \(6, 16\)"):
        PromptPool.from_pretrained(tmp_path)


def test_missing_tensor_and_bad_format_refused():
    tensors, meta = pool_to_tensors(trained_pool())
    del tensors["usage"]
    with pytest.raises(ValueError, match=r"missing \['usage'\]"):
        pool_from_tensors(tensors, meta)
    with pytest.raises(ValueError, match="not a saved PromptPool"):
        pool_from_tensors(tensors, {**meta, "format": "other"})


def test_missing_path_and_file_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved PromptPool"):
        PromptPool.from_pretrained(tmp_path / "nothing")
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(FileExistsError, match="must be a directory"):
        trained_pool().save_pretrained(f)


def test_format_constant_is_in_metadata():
    _, meta = pool_to_tensors(trained_pool())
    assert meta["format"] == pool_io.FORMAT


def test_keys_of_another_width_than_the_prompts_select_save_and_load(tmp_path):
    pool = PromptPool(PoolConfig(embed_dim=8, key_dim=5, prompt_length=2, top_k=2))
    pool.add_task(3)
    assert pool.keys.shape == (3, 5) and pool.prompts.shape == (3, 2, 8)
    sel = pool.select(torch.randn(4, 5))
    assert sel.prompts.shape == (4, 2 * 2, 8) and sel.ids.shape == (4, 2)
    with pytest.raises(ValueError):
        pool.select(torch.randn(4, 8))  # a query of the prompts' width is not a key's
    pool.add_task(2)  # freezes the first segment: its keys go to the index
    pool.save_pretrained(tmp_path / "p")
    loaded = PromptPool.from_pretrained(tmp_path / "p")
    q = torch.randn(6, 5)
    assert torch.equal(loaded.select(q).ids, pool.select(q).ids)
    with pytest.raises(ValueError, match="key_dim"):
        PromptPool.from_pretrained(tmp_path / "p", config=PoolConfig(embed_dim=8, prompt_length=2))
