"""A causal LM's frozen query: which hidden states, pooled how (see ``CausalLMConfig``).

The query pass stops after the last block it reads: with the default middle layer it
runs half the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


def resolve_query_layer(layer: int | str | None, depth: int, name: str) -> int | None:
    """``CausalLMConfig.query_layer`` as an index into the hidden states (0 .. depth - 1), or
    None for the final one (after the model's norm); ValueError when out of range."""
    if layer == "middle":
        return depth // 2
    if layer is None or layer == "last":
        return None
    if not -(depth + 1) <= layer <= depth:
        raise ValueError(f"query_layer must be in [{-(depth + 1)}, {depth}], 'middle', 'last' or None "
                         f"for {name}, got {layer}")
    layer %= depth + 1
    return None if layer == depth else layer


def last_real_index(mask: torch.Tensor) -> torch.Tensor:
    """(B, S) 0/1 mask -> (B,) column of each row's last real entry."""
    cols = torch.arange(mask.shape[1], device=mask.device)
    return (mask.bool() * (cols + 1)).argmax(dim=-1)


def pool(hidden: torch.Tensor, real: torch.Tensor, pooling: str, head: int) -> torch.Tensor:
    """(B, S, D), (B, S) -> (B, D): the mean over the real columns ("mean"), over those after
    the first ``head`` real ones, the template's head ("text"), or the last real column ("last")."""
    if pooling == "last":
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last_real_index(real)]
    if pooling == "text":  # the head is each row's first real columns
        real = real * (real.cumsum(dim=1) > head)
    weights = real.to(hidden.dtype).unsqueeze(-1)  # (B, S, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def decoder_blocks(decoder: nn.Module, depth: int) -> nn.ModuleList:
    """The decoder's blocks in order: its one child ``ModuleList`` of ``depth`` modules
    (Llama's and Qwen2's ``layers``, GPT-2's ``h``, GPT-NeoX's ``layers``)."""
    found = [m for m in decoder.children() if isinstance(m, nn.ModuleList) and len(m) == depth]
    if len(found) != 1:
        raise ValueError(f"{type(decoder).__name__} has {len(found)} lists of {depth} blocks, expected one")
    return found[0]


class _Enough(Exception):
    """Raised by the last block a pass reads, to stop the pass there."""


def block_outputs(run: Callable[[], object], blocks: Sequence[nn.Module], first: int, last: int) -> list[torch.Tensor]:
    """Hidden states ``first`` .. ``last`` (1 <= first <= last < depth: the outputs of blocks
    first - 1 .. last - 1, as transformers numbers ``hidden_states``) of the pass ``run``,
    which stops after block ``last - 1``. Each (B, S, D)."""
    assert 1 <= first <= last < len(blocks), f"hidden states {first}..{last} of {len(blocks)} blocks"
    kept: dict[int, torch.Tensor] = {}

    def keep(i: int):
        def hook(module, args, output):
            kept[i] = output[0] if isinstance(output, tuple) else output
            if i == last:
                raise _Enough

        return hook

    handles = [blocks[i - 1].register_forward_hook(keep(i)) for i in range(first, last + 1)]
    try:
        run()
    except _Enough:
        pass
    finally:
        for h in handles:
            h.remove()
    return [kept[i] for i in range(first, last + 1)]
