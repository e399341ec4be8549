"""``ncm``: nearest class mean on frozen features; statistics only, never trained by gradient."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from cl_prompts.methods.closed_form import (
    StatisticsMethod,
    add_to_class_sums,
    max_cosine_to_means,
    register_class_sums,
)
from cl_prompts.methods.ncm.config import NCMConfig
from cl_prompts.methods.registry import register


@register
class NCM(StatisticsMethod):
    """Class prototypes = running means of ``backbone.query_features``; logits = cosine to them.

    Only ``observe()`` feeds it. A class's prototype is final once its experience ends
    (later experiences never touch it).
    """

    name = "ncm"
    config_class = NCMConfig

    def __init__(self, backbone: Any, num_classes: int, config: NCMConfig):
        super().__init__(backbone, num_classes, config)
        register_class_sums(self, num_classes, self.feature_dim)

    @torch.no_grad()
    def observe(self, inputs: Any, targets: Tensor) -> None:
        """Add a batch's frozen features to its classes' sums."""
        super().observe(inputs, targets)
        inputs, targets = self._observed_rows(inputs, targets)
        if len(targets):
            add_to_class_sums(self, self.query(inputs), targets)

    def statistics(self) -> list[Tensor]:
        return [self.class_sums, self.class_counts]

    def prototypes(self) -> Tensor:
        """(C, D) class means (zeros for classes never observed)."""
        return (self.class_sums / self.class_counts.clamp_min(1).unsqueeze(1)).float()

    @torch.no_grad()
    def class_similarity(self, inputs: Any) -> Tensor:
        """(B,) cosine to the nearest class mean of the frozen features."""
        return max_cosine_to_means(self.query(inputs), self.class_sums, self.class_counts)

    def _logits(self, inputs: Any) -> Tensor:
        q = self.query(inputs)  # (B, D)
        protos = self.prototypes().to(q.dtype)  # (C, D)
        if self.config.metric == "cosine":
            logits = F.normalize(q, dim=-1) @ F.normalize(protos, dim=-1).T
        else:
            logits = -torch.cdist(q, protos).pow(2)
        # a class seen in begin_experience but never observed cannot be predicted
        return logits.masked_fill(self.class_counts == 0, float("-inf"))
