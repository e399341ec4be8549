"""What a method's key index chose for each input: the ``routing`` hook of every method."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Routing:
    """The prompts a method picked for a batch, for people to inspect (no gradient).

    Attributes:
        experience: (B,) long, the experience (task) the input was routed to; -1 where the
            method routes to no single experience (e.g. a shared pool).
        prompt_ids: (B, k) long, the pool ids of the prompts used, best first (-1: none).
        key_scores: (B, k) float, the key index's score of each (cosine similarity for a
            pool's keys, the routing readout's score for ``growing_pool``'s class keys).
        queries: (B, W) float, what was matched against the method's ``routing_keys()`` (W their
            width), or None.
    """

    experience: torch.Tensor
    prompt_ids: torch.Tensor
    key_scores: torch.Tensor
    queries: torch.Tensor | None = None

    def __post_init__(self) -> None:
        b = self.experience.shape[0]
        assert self.experience.dim() == 1, f"experience must be (B,), got {tuple(self.experience.shape)}"
        assert self.prompt_ids.shape == self.key_scores.shape and self.prompt_ids.shape[0] == b, (
            f"prompt_ids {tuple(self.prompt_ids.shape)} and key_scores {tuple(self.key_scores.shape)} "
            f"must both be (B={b}, k)"
        )
        if self.queries is not None:
            assert self.queries.dim() == 2 and self.queries.shape[0] == b, (
                f"queries must be (B={b}, W), got {tuple(self.queries.shape)}"
            )


def first_distinct(tasks: Tensor, m: int) -> Tensor:
    """(B, K) task ids of ranked keys -> (B, m): the first m distinct ones, padded with the first."""
    out = tasks[:, :1].repeat(1, m)
    for b in range(tasks.shape[0]):
        seen: list[int] = []
        for t in tasks[b].tolist():
            if t >= 0 and t not in seen:
                seen.append(t)
                if len(seen) == m:
                    break
        out[b, : len(seen)] = torch.tensor(seen, dtype=tasks.dtype)
    return out


def rebuild_class_keys(key_index, route_stats, route_readout: torch.Tensor) -> None:
    """Refill ``key_index`` with one key per class seen: its column of ``route_readout`` (M, C)."""
    key_index.reset()
    solved = torch.nonzero(route_stats.class_counts > 0).flatten()
    if len(solved):
        key_index.add(route_readout.T[solved], solved)  # (n, M)


def candidate_tasks_of(key_index, h: torch.Tensor, class_task: torch.Tensor, m: int, open_task: int) -> torch.Tensor:
    """(B, m) the first ``m`` distinct tasks owning the classes whose keys are nearest to ``h`` (B, M).

    Before any key exists (the first experience open) every input gets ``open_task``.
    """
    k = min(key_index.ntotal, class_task.shape[0])
    if k == 0:
        return torch.full((h.shape[0], 1), open_task, device=h.device)
    _, ids = key_index.search(h, k)  # (B, k) class ids, nearest first
    owners = torch.where(ids >= 0, class_task[ids.clamp(min=0)], -1)
    return first_distinct(owners.cpu(), m).to(h.device)


class SharedPoolInspection:
    """``routing``, ``routing_keys`` and ``input_prompts`` of a method with one shared pool
    (``self.pool``) searched with the backbone's frozen query (``l2p`` on encoders and causal LMs)."""

    @torch.no_grad()
    def routing(self, inputs) -> Routing:
        """The top-k prompts of the shared pool (it belongs to no single experience: -1)."""
        query = self.backbone.query_features(inputs)  # (B, Dq)
        sel = self.pool.select(query)
        return Routing(experience=torch.full_like(sel.ids[:, 0], -1), prompt_ids=sel.ids, key_scores=sel.scores,
                       queries=query)

    def routing_keys(self) -> tuple[Tensor, Tensor]:
        from cl_prompts.methods.prompts import pool_contents

        _, keys, shared = pool_contents(self.pool, shared=True)
        return keys, shared

    def input_prompts(self) -> tuple[Tensor, Tensor]:
        from cl_prompts.methods.prompts import pool_contents

        prompts, _, shared = pool_contents(self.pool, shared=True)
        return prompts, shared
