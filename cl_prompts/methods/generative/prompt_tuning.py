"""``prompt_tuning`` on a causal LM: one soft prompt, trained on every experience in turn."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cl_prompts.methods.generative.base import GenerativeMethod, init_llm_prompts
from cl_prompts.methods.generative.config import GenerativePromptTuningConfig
from cl_prompts.methods.registry import register


@register
class GenerativePromptTuning(GenerativeMethod):
    """One prompt (P, D) shared by all experiences; the seen classes' answers are ranked under it."""

    name = "prompt_tuning"
    config_class = GenerativePromptTuningConfig

    def __init__(self, backbone: Any, num_classes: int, config: GenerativePromptTuningConfig):
        super().__init__(backbone, num_classes, config)
        c = config
        self.prompt = nn.Parameter(init_llm_prompts(backbone, c.prompt_length, c.prompt_init, c.prompt_init_scale))

    def _grow(self, experience: int, classes: list[int]) -> None:
        if experience == 0 and self.config.prompt_init == "labels" and not self._restoring:
            with torch.no_grad():  # the first experience's answer texts
                self.prompt.copy_(self.new_prompt(classes))
        self.prompt.requires_grad_(True)

    def _freeze(self, experience: int) -> None:
        self.prompt.requires_grad_(False)  # until the next experience: shared, not frozen for good

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [self.prompt] if self.prompt.requires_grad else []

    def input_prompts(self) -> tuple[Tensor, Tensor]:
        """The one prompt (1, P, D), shared by every experience (-1)."""
        return self.prompt.detach()[None], torch.full((1,), -1, dtype=torch.long)

    def _train_prompts(self, inputs: Any) -> Tensor:
        return self.prompt[None]  # (1, P, D)

    def _logits(self, inputs: Any) -> Tensor:
        return self.scores_over(inputs, self.seen_classes(), self.prompt[None])
