"""What a method's key index chose for each input: the ``routing`` hook of every method."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
