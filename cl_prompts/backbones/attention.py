"""Key/value prefix injection through transformers' ``AttentionInterface``.

Every supported family, encoders and decoders alike, computes attention through
``ALL_ATTENTION_FUNCTIONS`` (see e.g. ``BertSelfAttention.forward`` or
``LlamaAttention.forward`` in transformers 5.x). We register one extra
implementation, :data:`ATTN_IMPLEMENTATION`, that looks up a per-module prefix set by
:func:`prefixes_set`, concatenates it in front of the already-projected keys and
values (split into heads) and widens the mask; then it delegates to transformers'
own SDPA function. Without a prefix it is exactly SDPA, so the model's code is
never copied or patched.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTN_IMPLEMENTATION = "cl_prompts_prefix"
# Private attribute set on attention modules for the duration of one forward pass.
_PREFIX_ATTR = "_cl_prompts_prefix"
# Attention modules seen by the probe pass (see :func:`record_attention_modules`).
_RECORDING: list[list[nn.Module]] = []


def _split_heads(x: torch.Tensor, num_heads: int, like: torch.Tensor) -> torch.Tensor:
    """(B, P, H * d) -> (B, H, P, d), cast to the dtype/device of the keys."""
    b, p, _ = x.shape
    return x.reshape(b, p, num_heads, -1).transpose(1, 2).to(dtype=like.dtype, device=like.device)


def _extend_mask(mask: torch.Tensor | None, batch: int, prefix_len: int) -> torch.Tensor | None:
    """Prepend ``prefix_len`` always-visible key columns to a 4D mask (B|1, 1, Q, K)."""
    if mask is None:
        return None  # no mask: everything (prefix included) is visible
    shape = (*mask.shape[:-1], prefix_len)
    if mask.dtype == torch.bool:
        extra = torch.ones(shape, dtype=torch.bool, device=mask.device)
    else:  # additive float mask: 0 means visible
        extra = torch.zeros(shape, dtype=mask.dtype, device=mask.device)
    extended = torch.cat([extra, mask], dim=-1)
    if extended.shape[0] == 1 and batch > 1:
        extended = extended.expand(batch, *extended.shape[1:])
    return extended


def _causal_mask(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """(1, 1, Q, K) bool causal mask aligned bottom-right: query i sees keys up to K - Q + i.

    SDPA's own ``is_causal`` aligns top-left, which is wrong once keys are longer than
    queries (a prefix, or a key/value cache in front).
    """
    q, k = query.shape[2], key.shape[2]
    rows = torch.arange(q, device=query.device)[:, None] + (k - q)
    return (torch.arange(k, device=query.device)[None, :] <= rows)[None, None]


def prefix_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """SDPA attention with an optional (B, 2, P, D) key/value prefix stored on ``module``.

    query/key/value: (B, H, T, d); D is the keys' width H_kv * d (the hidden size, or
    less under grouped-query attention, where keys have fewer heads than queries). The prefix is concatenated along the key axis after
    the projections, as in DualPrompt / CODA-Prompt's prefix tuning. In a decoder the
    keys already carry their rotary positions and the prefix none (as in prefix tuning
    through a key/value cache); every query sees the whole prefix.
    """
    for recorder in _RECORDING:
        recorder.append(module)
    prefix = getattr(module, _PREFIX_ATTR, None)
    if prefix is not None:
        causal = kwargs.get("is_causal")
        causal = getattr(module, "is_causal", True) if causal is None else causal
        if attention_mask is None and causal and query.shape[2] > 1:
            # transformers skips a plain causal mask and lets SDPA align it; spell it out
            attention_mask = _causal_mask(query, key)
        num_heads = key.shape[1]  # key/value heads: fewer than the query's under grouped-query attention
        pk = _split_heads(prefix[:, 0], num_heads, key)  # (B, H, P, d)
        pv = _split_heads(prefix[:, 1], num_heads, value)  # (B, H, P, d)
        key = torch.cat([pk, key], dim=2)  # (B, H, P + T, d)
        value = torch.cat([pv, value], dim=2)
        attention_mask = _extend_mask(attention_mask, query.shape[0], prefix.shape[2])
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


AttentionInterface.register(ATTN_IMPLEMENTATION, prefix_attention_forward)
AttentionMaskInterface.register(ATTN_IMPLEMENTATION, sdpa_mask)


@contextmanager
def record_attention_modules() -> Iterator[list[nn.Module]]:
    """Collect, in call order, the modules that run attention inside this block."""
    seen: list[nn.Module] = []
    _RECORDING.append(seen)
    try:
        yield seen
    finally:
        _RECORDING.remove(seen)


@contextmanager
def prefixes_set(
    attention_modules: list[nn.Module], prefixes: Mapping[int, torch.Tensor] | None
) -> Iterator[None]:
    """Attach ``prefixes[layer]`` (B, 2, P, D) to the layer's attention module for one pass."""
    if not prefixes:
        yield
        return
    try:
        for layer, prefix in prefixes.items():
            setattr(attention_modules[layer], _PREFIX_ATTR, prefix)
        yield
    finally:
        for module in attention_modules:
            if hasattr(module, _PREFIX_ATTR):
                delattr(module, _PREFIX_ATTR)
