"""The prompted input pass of a :class:`PromptedCausalLM`, with the template's head run once.

Every templated input starts with the same tokens, the template's head (SmolLM2's chat
template: a 24-token system turn and the user turn's marker). When the input prompts and
the key/value prefixes are the same for every row (batch dimension 1, or none), the
columns ``[prompts, head]`` run once, and each row's own tokens (its text and the
template's tail, then any appended columns such as its answer) run against that key/value
cache, expanded to the batch. The outputs are those of one pass over
``[prompts, head, text, tail]`` per row, up to float rounding: every real token sees the
same keys at the same positions (positions count real columns only). Gradients reach the
prompts, the prefixes and the model through both passes.

Rows whose prompts differ (``l2p``'s per-input selection) run the whole sequence, as do
inputs that do not start with the head (tokenized elsewhere); ``CausalLMConfig.share_head``
False runs every pass whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from .causal_query import last_real_index
from .inputs import Inputs, batch_size, check_input_prompts, prepare


@dataclass
class InputPass:
    """What one prompted pass over the inputs (and appended columns) gives.

    hidden: (B, S, D) last hidden states of the columns run per row: the input's own
        (``width`` of them; with the head shared, its text and tail only), then the
        appended ones.
    mask: (B, C + S) 0/1 mask over the shared (cached) columns C and those S.
    first: (B, D) the hidden state of each input's last real token (it predicts the first
        answer token).
    width: columns of ``hidden`` that belong to the input.
    cache: the key/value cache of all C + S columns, when asked for.
    """

    hidden: torch.Tensor
    mask: torch.Tensor
    first: torch.Tensor
    width: int
    cache: DynamicCache | None = None


def split_off_head(ids: torch.Tensor, mask: torch.Tensor, head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(B, T) ids and mask padded on either side, (H,) head ids -> each row's tokens after the
    head, (B, T - H) ids and mask, padded on the same side; None unless every row's first H
    real tokens are the head and at least one real token follows.
    """
    b, t = ids.shape
    h = head.shape[0]
    if h == 0 or t <= h or bool((mask.sum(dim=1) <= h).any()):
        return None
    start = mask.long().argmax(dim=1)  # (B,) each row's first real column
    cols = start[:, None] + torch.arange(h, device=ids.device)  # (B, H)
    if not bool((mask.gather(1, cols) == 1).all()) or not bool((ids.gather(1, cols) == head).all()):
        return None
    # Drop H columns: left padding keeps each row right-aligned, right padding left-aligned.
    keep = torch.arange(t - h, device=ids.device)[None] >= start[:, None]  # (B, T - H)
    return ids[:, h:], mask[:, h:] * keep


def _shared_rows(input_prompts: torch.Tensor | None, prefix_prompts: Mapping[int, torch.Tensor] | None) -> bool:
    """True when the prompts and prefixes are one row for every input (or absent)."""
    rows = [] if input_prompts is None else [input_prompts.shape[0]]
    rows += [p.shape[0] for p in (prefix_prompts or {}).values() if isinstance(p, torch.Tensor) and p.dim() == 4]
    return all(r == 1 for r in rows)


def input_pass(bb, inputs: Inputs, input_prompts: torch.Tensor | None,
               prefix_prompts: Mapping[int, torch.Tensor] | None = None, *,
               extra: tuple[torch.Tensor, torch.Tensor] | None = None, use_cache: bool = False) -> InputPass:
    """``[prompts, templated input, extra]`` through ``bb``'s decoder (no LM head).

    inputs: {"input_ids", "attention_mask"} (B, T) from ``bb.tokenize``; input_prompts
    (B|1, P, D); prefix_prompts {layer: (B|1, 2, P', prefix_size)}; extra: columns
    appended after each input, embeddings (B, La, D) and their 0/1 mask (B, La), right-padded.
    """
    model_inputs, mask = prepare(inputs, "text", bb.model.dtype, trim_leading=True)  # (B, T)
    split = None
    if bb.config.share_head and _shared_rows(input_prompts, prefix_prompts):
        split = split_off_head(model_inputs["input_ids"], mask, bb.head_ids.to(mask.device))
    if split is None:
        return _whole_pass(bb, inputs, input_prompts, prefix_prompts, extra, use_cache)
    b = batch_size(inputs)
    embed = bb.model.get_input_embeddings()
    shared = embed(bb.head_ids.to(mask.device))[None]  # (1, H, D)
    prompts = check_input_prompts(input_prompts, 1, bb.hidden_size)  # (1, P, D) or None
    if prompts is not None:
        shared = torch.cat([prompts.to(shared.dtype), shared], dim=1)  # (1, P + H, D)
    c = shared.shape[1]
    head = bb.run_decoder(shared, mask.new_ones(1, c), bb.check_prefixes(prefix_prompts, 1),
                          cache=DynamicCache(config=bb.model.config))
    cache = DynamicCache(ddp_cache_data=[(layer.keys.expand(b, -1, -1, -1), layer.values.expand(b, -1, -1, -1))
                                         for layer in head.cache.layers], config=bb.model.config)
    ids, own = split  # (B, T - H)
    embeds, full_mask = embed(ids), torch.cat([mask.new_ones(b, c), own], dim=1)  # (B, S, D), (B, C + S)
    if extra is not None:
        embeds = torch.cat([embeds, extra[0].to(embeds.dtype)], dim=1)
        full_mask = torch.cat([full_mask, extra[1].to(full_mask)], dim=1)
    out = bb.run_decoder(embeds, full_mask, bb.check_prefixes(prefix_prompts, b), cache=cache)
    first = out.last_hidden_state[torch.arange(b, device=mask.device), last_real_index(own)]  # (B, D)
    return InputPass(out.last_hidden_state, full_mask, first, ids.shape[1], out.cache if use_cache else None)


def _whole_pass(bb, inputs: Inputs, input_prompts, prefix_prompts, extra, use_cache: bool) -> InputPass:
    embeds, mask = bb.prompted_embeddings(inputs, input_prompts)  # (B, P + T, D), (B, P + T)
    b, width = embeds.shape[:2]
    full_mask = mask
    if extra is not None:
        embeds = torch.cat([embeds, extra[0].to(embeds.dtype)], dim=1)
        full_mask = torch.cat([mask, extra[1].to(mask)], dim=1)
    out = bb.run_decoder(embeds, full_mask, bb.check_prefixes(prefix_prompts, b),
                         cache=DynamicCache(config=bb.model.config) if use_cache else None)
    first = out.last_hidden_state[torch.arange(b, device=mask.device), last_real_index(mask)]  # (B, D)
    return InputPass(out.last_hidden_state, full_mask, first, width, out.cache if use_cache else None)
