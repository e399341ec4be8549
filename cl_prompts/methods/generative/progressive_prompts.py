"""``progressive_prompts`` on a causal LM: each experience's prompt goes in front of the frozen earlier ones."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cl_prompts.methods.generative.base import GenerativeMethod
from cl_prompts.methods.generative.config import ProgressivePromptsConfig
from cl_prompts.methods.registry import register


@register
class ProgressivePrompts(GenerativeMethod):
    """Buffers ``frozen`` (T_done * P, D): the finished experiences' prompts, newest first;
    ``current`` (P, D): the open experience's, trained."""

    name = "progressive_prompts"
    config_class = ProgressivePromptsConfig
    renews_parameters = True  # each experience trains a new ``current``

    def __init__(self, backbone: Any, num_classes: int, config: ProgressivePromptsConfig):
        super().__init__(backbone, num_classes, config)
        self.register_buffer("frozen", torch.zeros(0, self.hidden_size))
        self.register_parameter("current", None)

    def _grow(self, experience: int, classes: list[int]) -> None:
        self.current = nn.Parameter(self.new_prompt(classes).to(self.frozen.device))

    def _freeze(self, experience: int) -> None:
        self.frozen = torch.cat([self.current.detach(), self.frozen])  # newest first
        self.current = None

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [self.current] if self.current is not None else []

    def input_prompts(self) -> tuple[Tensor, Tensor] | None:
        """Each finished experience's prompt (T, P, D), oldest first, and its experience."""
        p = self.config.prompt_length
        n = self.frozen.shape[0] // p
        if n == 0:
            return None
        prompts = self.frozen.detach().view(n, p, -1).flip(0)
        return prompts, torch.arange(n)

    def _sequence(self) -> Tensor:
        """(1, P_total, D): the open prompt (if any) in front of the frozen ones."""
        parts = ([self.current] if self.current is not None else []) + [self.frozen]
        return torch.cat(parts)[None]

    def _train_prompts(self, inputs: Any) -> Tensor:
        return self._sequence()

    def _logits(self, inputs: Any) -> Tensor:
        return self.scores_over(inputs, self.seen_classes(), self._sequence())

    @torch.no_grad()
    def task_aware_logits(self, inputs: Any, experience: int) -> Tensor:
        """(B, C) with the task given (the paper's setting): ``experience``'s classes scored under
        the prompts of experiences 0..``experience`` (``[P_e, ..., P_0]``); every other class ``-inf``."""
        p = self.config.prompt_length
        done = self.frozen.shape[0] // p
        if not 0 <= experience < done:
            raise ValueError(f"experience must be a finished experience in [0, {done}), got {experience}")
        prompts = self.frozen[(done - 1 - experience) * p:][None]  # (1, (e + 1) * P, D), newest first
        classes = torch.tensor(self.experiences[experience], device=self.frozen.device)
        return self.scores_over(inputs, classes, prompts)

    def _after_load(self) -> None:
        self.current = None
