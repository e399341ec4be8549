"""``prompt_tuning``: one shared soft prompt in front of the input, never frozen."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cl_prompts.methods.base import ContinualMethod
from cl_prompts.methods.features import pick_feature
from cl_prompts.methods.heads import GrowingHead
from cl_prompts.methods.prompt_tuning.config import PromptTuningConfig
from cl_prompts.methods.prompts import init_prompts
from cl_prompts.methods.registry import register


@register
class PromptTuning(ContinualMethod):
    """Prompt (P, D) shared by all experiences + growing head; old head rows freeze when masked."""

    name = "prompt_tuning"
    config_class = PromptTuningConfig

    def __init__(self, backbone: Any, num_classes: int, config: PromptTuningConfig):
        super().__init__(backbone, num_classes, config)
        c = config
        shape = (c.prompt_length, self.hidden_size)
        self.prompt = nn.Parameter(init_prompts(shape, c.prompt_init, c.prompt_init_scale))  # (P, D)
        self.head = GrowingHead(self.hidden_size, num_classes)

    def _grow(self, experience: int, classes: list[int]) -> None:
        self.head.grow(classes, train_only_new=self.config.mask_absent)
        self.prompt.requires_grad_(True)

    def _freeze(self, experience: int) -> None:
        self.head.set_trainable([])
        self.prompt.requires_grad_(False)  # until the next experience: it is shared, not frozen for good

    def trainable_parameters(self) -> list[nn.Parameter]:
        own = [self.prompt] if self.prompt.requires_grad else []
        return own + self.head.trainable_parameters()

    def input_prompts(self) -> tuple[Tensor, Tensor]:
        """The one prompt (1, P, D), shared by every experience (-1)."""
        return self.prompt.detach()[None], torch.full((1,), -1, dtype=torch.long)

    def _features(self, inputs: Any) -> Tensor:
        out = self.backbone(inputs, input_prompts=self.prompt.unsqueeze(0))  # (1, P, D) broadcast
        return pick_feature(out, self.config.feature)  # (B, D)

    def _logits(self, inputs: Any) -> Tensor:
        return self.head(self._features(inputs))
