"""``linear_probe``: a growing head over ``backbone.query_features`` (frozen, cached)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from cl_prompts.methods.base import ContinualMethod
from cl_prompts.methods.heads import GrowingHead
from cl_prompts.methods.linear_probe.config import LinearProbeConfig
from cl_prompts.methods.registry import register


@register
class LinearProbe(ContinualMethod):
    """Sequential head on frozen features.

    Masked: only the current experience's head rows train, old rows are frozen.
    Unmasked: all rows of the classes seen so far train, with softmax over all of them.
    """

    name = "linear_probe"
    config_class = LinearProbeConfig
    runs_on_causal_lm = True  # frozen features only

    def __init__(self, backbone: Any, num_classes: int, config: LinearProbeConfig):
        super().__init__(backbone, num_classes, config)
        self.head = GrowingHead(backbone.query_width(), num_classes, config.head, config.head_scale)

    @property
    def _masked(self) -> bool:
        return self.config.mask_absent

    def _grow(self, experience: int, classes: list[int]) -> None:
        self.head.grow(classes, train_only_new=self._masked)

    def _freeze(self, experience: int) -> None:
        self.head.set_trainable([])

    def frozen_query_layers(self) -> int:
        return 1  # its query: the last layer's pooled feature

    def trainable_parameters(self) -> list[nn.Parameter]:
        return self.head.trainable_parameters()

    def features(self, inputs: Any) -> Tensor:
        return self.backbone.query_features(inputs)  # (B, query_width), no grad

    def _logits(self, inputs: Any) -> Tensor:
        return self.head(self.features(inputs))
