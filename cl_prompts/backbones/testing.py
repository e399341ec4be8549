"""Tiny random backbones for tests: 2 layers, width 32, offline, deterministic.

Text ones, causal LMs included, reuse MiniLM's tokenizer (its vocabulary sizes the
embedding table). Also reachable as ``load_backbone(name_or_path="tiny-<family>")``.
"""

from __future__ import annotations

import dataclasses

import torch
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    BertConfig,
    DeiTConfig,
    DistilBertConfig,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    Qwen2Config,
    RobertaConfig,
    ViTConfig,
    XLMRobertaConfig,
)

from .attention import ATTN_IMPLEMENTATION
from .backbone import PromptedBackbone
from .causal_config import CAUSAL_FAMILIES, CausalLMConfig, check_causal_family
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
    """A 2-layer, width-32 random backbone of any supported ``family`` (decoders included)."""
    if family in CAUSAL_FAMILIES:
        from .causal_loading import causal_config_from, load_query_encoder

        causal = causal_config_from(config) if config else None
        return tiny_causal_lm(family, causal, seed, query_encoder=load_query_encoder(causal) if causal else None)
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


# A chat template for MiniLM's word-piece tokenizer (it has none): one turn per message.
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}[CLS] {{ m['role'] }} : {{ m['content'] }} [SEP] {% endfor %}"
    "{% if add_generation_prompt %}[CLS] assistant :{% endif %}"
)


def _causal_config(family: str, vocab_size: int, pad_id: int, eos_id: int):
    if family == "gpt2":
        return GPT2Config(n_embd=WIDTH, n_layer=LAYERS, n_head=HEADS, n_inner=FFN, n_positions=256,
                          vocab_size=vocab_size, pad_token_id=pad_id, bos_token_id=eos_id, eos_token_id=eos_id)
    common = dict(hidden_size=WIDTH, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=FFN,
                  max_position_embeddings=256, vocab_size=vocab_size, pad_token_id=pad_id, eos_token_id=eos_id)
    if family == "gpt_neox":
        return GPTNeoXConfig(**common)
    cls = {"llama": LlamaConfig, "qwen2": Qwen2Config}[family]
    return cls(num_key_value_heads=HEADS // 2, **common)  # grouped-query attention, as in SmolLM2


def tiny_causal_lm(family: str = "llama", config: CausalLMConfig | None = None, seed: int = 0,
                   chat: bool = False, query_encoder=None):
    """A 2-layer, width-32 random causal LM of ``family`` (``CAUSAL_FAMILIES``).

    chat: give the tokenizer :data:`TINY_CHAT_TEMPLATE` (else the plain template applies).
    query_encoder: the loaded encoder ``config.query_encoder`` names, if it names one.
    """
    from .causal_lm import PromptedCausalLM

    check_causal_family(family)
    config = config or CausalLMConfig(name_or_path=f"tiny-{family}")
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    if chat:
        tokenizer.chat_template = TINY_CHAT_TEMPLATE
    hf_config = _causal_config(family, len(tokenizer), tokenizer.pad_token_id, tokenizer.sep_token_id)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(hf_config, attn_implementation=ATTN_IMPLEMENTATION)
    return PromptedCausalLM(model, config, tokenizer, query_encoder=query_encoder)
