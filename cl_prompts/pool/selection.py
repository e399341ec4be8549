"""Selection results and the id-picking helpers of PromptPool.select."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Selection:
    """Prompts chosen for a batch.

    Attributes:
        ids: (B, k) long, chosen prompt ids, best first.
        scores: (B, k) cosine similarity between the query and the chosen keys,
            differentiable w.r.t. the (trainable) keys.
        prompts: (B, k * L, D) the chosen prompts concatenated in ``ids`` order,
            differentiable w.r.t. the (trainable) prompts.
    """

    ids: torch.Tensor
    scores: torch.Tensor
    prompts: torch.Tensor

    @property
    def k(self) -> int:
        """Prompts per input."""
        return int(self.ids.shape[1])


def merge_topk(
    scores: list[torch.Tensor], ids: list[torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best k of several candidate lists per row.

    Args:
        scores: list of (B, n_i) float; ``-inf`` marks an empty slot.
        ids: list of (B, n_i) long, aligned with ``scores``.
    Returns:
        (B, k) scores and ids; ids are -1 where fewer than k candidates were valid.
    """
    all_s = torch.cat(scores, dim=1)  # (B, sum n_i)
    all_i = torch.cat(ids, dim=1)
    kk = min(k, all_s.shape[1])
    top_s, pos = torch.topk(all_s, kk, dim=1)
    top_i = torch.gather(all_i, 1, pos)
    top_i = torch.where(torch.isfinite(top_s), top_i, torch.full_like(top_i, -1))
    if kk < k:
        pad = k - kk
        top_s = torch.cat([top_s, top_s.new_full((top_s.shape[0], pad), float("-inf"))], 1)
        top_i = torch.cat([top_i, top_i.new_full((top_i.shape[0], pad), -1)], 1)
    return top_s, top_i


def batchwise_ids(ids: torch.Tensor, scores: torch.Tensor, size: int, k: int) -> torch.Tensor:
    """L2P's batch-wise selection: the k ids chosen most often over the batch.

    Ties in count are broken by the summed score of the id over the rows that chose it.
    A row chooses an id at most once, so a count difference of 1 (weighted 2B + 1)
    outweighs any score sum (at most B in magnitude).

    Args:
        ids: (B, k) per-row choices; scores: (B, k) their scores.
    Returns:
        (k,) long, most frequent first.
    """
    b = ids.shape[0]
    flat = ids.reshape(-1)
    counts = torch.bincount(flat, minlength=size).double()  # (N,)
    sums = torch.zeros(size, dtype=torch.double, device=ids.device)
    sums.index_add_(0, flat, scores.reshape(-1).double())
    rank = counts * (2 * b + 1) + sums
    rank[counts == 0] = float("-inf")  # never pick an id no row chose
    return torch.topk(rank, k).indices
