"""``finetune`` on a causal LM: every weight of a private copy of the LLM trains on the answers."""

from __future__ import annotations

import copy
from typing import Any

from torch import Tensor, nn

from cl_prompts.methods.generative.base import GenerativeMethod
from cl_prompts.methods.generative.config import GenerativeFinetuneConfig
from cl_prompts.methods.registry import register


@register
class GenerativeFinetune(GenerativeMethod):
    """The LLM itself trains, experience after experience, with no prompt.

    The backbone given is deep-copied, so the caller's frozen LLM never changes; only the
    copy's decoder weights train (never a query encoder's). Its query cache is cleared, as
    its features drift. The copy's weights are saved with the method.
    """

    name = "finetune"
    config_class = GenerativeFinetuneConfig
    saves_backbone = True

    def __init__(self, backbone: Any, num_classes: int, config: GenerativeFinetuneConfig):
        backbone = copy.deepcopy(backbone)
        backbone.clear_query_cache()
        super().__init__(backbone, num_classes, config)

    def _grow(self, experience: int, classes: list[int]) -> None:
        self.backbone.model.requires_grad_(True)

    def _freeze(self, experience: int) -> None:
        self.backbone.model.requires_grad_(False)  # nothing trains between experiences

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.backbone.model.parameters() if p.requires_grad]

    def _train_prompts(self, inputs: Any) -> None:
        return None  # no prompt: the weights learn the answers

    def _logits(self, inputs: Any) -> Tensor:
        return self.scores_over(inputs, self.seen_classes(), None)
