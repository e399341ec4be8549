"""Shared tiny backbones (built once per session: they are frozen, tests only read them)."""

from __future__ import annotations

import functools

import pytest
import torch

from cl_prompts.backbones.testing import (
    TEXT_FAMILIES,
    VISION_FAMILIES,
    tiny_text_backbone,
    tiny_vision_backbone,
)

ALL_FAMILIES = TEXT_FAMILIES + VISION_FAMILIES
SENTENCES = ["book a flight to paris", "what is my balance", "set an alarm for six in the morning please"]


@functools.cache
def _tiny(family: str):
    if family in TEXT_FAMILIES:
        return tiny_text_backbone(family)
    return tiny_vision_backbone(family)


@pytest.fixture(params=ALL_FAMILIES)
def backbone(request):
    bb = _tiny(request.param)
    bb.clear_query_cache()
    return bb


@pytest.fixture(params=TEXT_FAMILIES)
def text_backbone(request):
    bb = _tiny(request.param)
    bb.clear_query_cache()
    return bb


def make_inputs(bb, batch: int = 3, seed: int = 0):
    """A padded text batch (padding to max_length) or random pixels (B, 3, 32, 32)."""
    if bb.modality == "text":
        return bb.tokenize(SENTENCES[:batch])
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 32, 32, generator=gen)


def single(inputs, i: int):
    """Sample i alone, without padding (text) or as a batch of one (vision)."""
    if isinstance(inputs, dict):
        n = int(inputs["attention_mask"][i].sum())
        return {k: v[i : i + 1, :n] for k, v in inputs.items()}
    return inputs[i : i + 1]
