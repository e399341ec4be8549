"""Tiny random backbones for tests: 2 layers, width 32, offline, deterministic.

Text ones reuse MiniLM's tokenizer (its vocabulary sizes the embedding table).
Also reachable as ``load_backbone(name_or_path="tiny-<family>")``.
"""

from __future__ import annotations

import dataclasses

import torch
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    DeiTConfig,
    DistilBertConfig,
    RobertaConfig,
    ViTConfig,
    XLMRobertaConfig,
)

from .backbone import PromptedBackbone
from .config import FAMILIES, BackboneConfig, check_family
from .loading import minilm_path, model_kwargs, resolve_pooling

WIDTH, LAYERS, HEADS, FFN = 32, 2, 4, 64
TEXT_FAMILIES = tuple(f for f, fam in FAMILIES.items() if fam.modality == "text")
VISION_FAMILIES = tuple(f for f, fam in FAMILIES.items() if fam.modality == "vision")
IMAGE_SIZE, PATCH_SIZE = 32, 8  # 16 patches


def _text_config(family: str, vocab_size: int, pad_id: int, max_length: int):
    positions = max(max_length, 64) + pad_id + 2  # RoBERTa positions start after pad_id
    common = dict(vocab_size=vocab_size, pad_token_id=pad_id)
    if family == "distilbert":
        return DistilBertConfig(
            dim=WIDTH, n_layers=LAYERS, n_heads=HEADS, hidden_dim=FFN, max_position_embeddings=positions, **common
        )
    cls = {"bert": BertConfig, "roberta": RobertaConfig, "xlm-roberta": XLMRobertaConfig}[family]
    return cls(
        hidden_size=WIDTH,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        max_position_embeddings=positions,
        **common,
    )


def _vision_config(family: str):
    cls = {"vit": ViTConfig, "deit": DeiTConfig}[family]
    return cls(
        hidden_size=WIDTH,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
    )


def _build(hf_config, family: str, seed: int):
    # fork_rng: building a tiny model must not move the caller's global RNG
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return AutoModel.from_config(hf_config, **model_kwargs(check_family(family)))


def tiny_backbone(family: str, config: BackboneConfig | None = None, seed: int = 0) -> PromptedBackbone:
    """A 2-layer, width-32 random backbone of any supported ``family``."""
    fam = check_family(family)
    config = config or BackboneConfig(name_or_path=f"tiny-{family}")
    tokenizer = None
    if fam.modality == "text":
        tokenizer = AutoTokenizer.from_pretrained(minilm_path(), trust_remote_code=False)
        hf_config = _text_config(family, len(tokenizer), tokenizer.pad_token_id, config.max_length)
    else:
        hf_config = _vision_config(family)
    model = _build(hf_config, family, seed)
    pooling = resolve_pooling(config.pooling, fam, None)
    return PromptedBackbone(model, dataclasses.replace(config, pooling=pooling), tokenizer)


def tiny_text_backbone(family: str = "bert", seed: int = 0, **config_kwargs) -> PromptedBackbone:
    """Tiny random text backbone: family in ``TEXT_FAMILIES``; kwargs go to BackboneConfig."""
    if family not in TEXT_FAMILIES:
        raise ValueError(f"family must be one of {TEXT_FAMILIES}, got {family!r}")
    return tiny_backbone(family, BackboneConfig(name_or_path=f"tiny-{family}", **config_kwargs), seed)


def tiny_vision_backbone(family: str = "vit", seed: int = 0, **config_kwargs) -> PromptedBackbone:
    """Tiny random vision backbone (inputs (B, 3, 32, 32)): family in ``VISION_FAMILIES``."""
    if family not in VISION_FAMILIES:
        raise ValueError(f"family must be one of {VISION_FAMILIES}, got {family!r}")
    return tiny_backbone(family, BackboneConfig(name_or_path=f"tiny-{family}", **config_kwargs), seed)
