"""``zero_shot``: the frozen instruction-tuned LM ranks the seen classes' answers, nothing trained."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cl_prompts.methods.generative.base import GenerativeMethod
from cl_prompts.methods.generative.config import ZeroShotConfig
from cl_prompts.methods.registry import register


@register
class ZeroShot(GenerativeMethod):
    """No parameters: ``forward`` scores every seen class's answer after the templated input
    (preceded by the list of those answers with ``list_answers``)."""

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

    def _generation_prompts(self, inputs: Any) -> Tensor | None:
        classes = self.seen_classes()
        return self.answer_list(classes) if self.config.list_answers and len(classes) else None

    def _logits(self, inputs: Any) -> Tensor:
        classes = self.seen_classes()
        return self.scores_over(inputs, classes, self.answer_list(classes) if self.config.list_answers else None)

    @torch.no_grad()
    def answer_list(self, classes: Tensor) -> Tensor:
        """(1, P, D) the token embeddings of "Possible answers: <the answers of classes>." and a newline."""
        text = "Possible answers: " + ", ".join(self.answer_texts[int(c)] for c in classes) + ".\n"
        ids = self.backbone.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        table = self.backbone.model.get_input_embeddings()
        return table(ids.to(table.weight.device)).float()  # (1, P, D)
