"""Key/value prefix injection through transformers' ``AttentionInterface``.

Every supported family computes attention through ``ALL_ATTENTION_FUNCTIONS``
(see e.g. ``BertSelfAttention.forward`` in transformers 5.x). We register one extra
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


def prefix_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """SDPA attention with an optional (B, 2, P, D) key/value prefix stored on ``module``.

    query/key/value: (B, H, T, d). The prefix is concatenated along the key axis after
    the projections, as in DualPrompt / CODA-Prompt's prefix tuning.
    """
    for recorder in _RECORDING:
        recorder.append(module)
    prefix = getattr(module, _PREFIX_ATTR, None)
    if prefix is not None:
        num_heads = key.shape[1]
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
