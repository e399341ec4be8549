"""``ncm``: nearest class mean on frozen features; statistics only, never trained by gradient."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from cl_prompts.methods.closed_form import StatisticsMethod, max_cosine_to_means
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
        d = self.feature_dim
        # float64 sums: prototypes do not depend on how the data was batched
        self.register_buffer("class_sums", torch.zeros(num_classes, d, dtype=torch.float64))
        self.register_buffer("class_counts", torch.zeros(num_classes, dtype=torch.float64))

    @torch.no_grad()
    def observe(self, inputs: Any, targets: Tensor) -> None:
        """Add a batch's frozen features to its classes' sums."""
        super().observe(inputs, targets)
        q = self.query(inputs).to(torch.float64)  # (B, D)
        self.class_sums.index_add_(0, targets, q)
        self.class_counts.index_add_(0, targets, torch.ones_like(targets, dtype=torch.float64))

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
