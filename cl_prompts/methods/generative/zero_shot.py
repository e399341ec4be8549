"""``zero_shot``: the frozen instruction-tuned LM ranks the seen classes' answers, nothing trained."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from cl_prompts.methods.generative.base import GenerativeMethod
from cl_prompts.methods.generative.config import ZeroShotConfig
from cl_prompts.methods.registry import register


@register
class ZeroShot(GenerativeMethod):
    """No parameters: ``forward`` scores every seen class's answer after the templated input."""

    name = "zero_shot"
    config_class = ZeroShotConfig
    requires_training = False

    def _grow(self, experience: int, classes: list[int]) -> None:
        pass

    def _freeze(self, experience: int) -> None:
        pass

    def trainable_parameters(self) -> list[nn.Parameter]:
        return []

    def _train_prompts(self, inputs: Any) -> None:
        return None

    def _logits(self, inputs: Any) -> Tensor:
        return self.scores_over(inputs, self.seen_classes())
