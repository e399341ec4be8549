"""``finetune``: train a private copy of the whole backbone plus the head, experience after experience."""

from __future__ import annotations

import copy
from typing import Any

from torch import Tensor, nn

from cl_prompts.methods.base import ContinualMethod
from cl_prompts.methods.finetune.config import FinetuneConfig
from cl_prompts.methods.heads import GrowingHead
from cl_prompts.methods.registry import register


@register
class Finetune(ContinualMethod):
    """Everything trains, always: the lower bound on forgetting.

    The backbone given is deep-copied and the copy unfrozen, so the caller's (shared)
    frozen backbone is never modified. The query cache is not used: features change
    as the encoder trains. The copy's weights are saved with the method.
    """

    name = "finetune"
    config_class = FinetuneConfig
    saves_backbone = True

    def __init__(self, backbone: Any, num_classes: int, config: FinetuneConfig):
        backbone = copy.deepcopy(backbone)
        backbone.clear_query_cache()  # the copy's features will drift: a cache would go stale
        super().__init__(backbone, num_classes, config)
        self.head = GrowingHead(self.hidden_size, num_classes, "linear")

    def _encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters())

    def _grow(self, experience: int, classes: list[int]) -> None:
        self.head.grow(classes, train_only_new=False)
        self.backbone.requires_grad_(True)

    def _freeze(self, experience: int) -> None:
        # nothing is ever frozen for good; between experiences nothing trains
        self.head.set_trainable([])
        self.backbone.requires_grad_(False)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self._encoder_parameters() if p.requires_grad] + self.head.trainable_parameters()

    def _logits(self, inputs: Any) -> Tensor:
        return self.head(self.backbone(inputs).pooled)
