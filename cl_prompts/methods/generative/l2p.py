"""``l2p`` on a causal LM: a shared prompt pool, the top-k prompts by key match in front of the input."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cl_prompts.methods.generative.base import GenerativeMethod
from cl_prompts.methods.generative.config import GenerativeL2PConfig
from cl_prompts.methods.registry import register
from cl_prompts.methods.routing import SharedPoolInspection
from cl_prompts.pool import PoolConfig, PromptPool, Selection


@register
class GenerativeL2P(SharedPoolInspection, GenerativeMethod):
    """One pool segment holds the whole shared pool (prompts (M, L, D), keys (M, Dq)); it
    keeps training in every experience. Selection is task-agnostic at train and test time."""

    name = "l2p"
    config_class = GenerativeL2PConfig

    def __init__(self, backbone: Any, num_classes: int, config: GenerativeL2PConfig):
        super().__init__(backbone, num_classes, config)
        c = config
        self.pool = PromptPool(PoolConfig(embed_dim=self.hidden_size, prompt_length=c.prompt_length, top_k=c.top_k,
                                          index=c.index, key_dim=backbone.query_width()))
        self._selection: Selection | None = None  # the last training selection, for the key-matching loss

    def _grow(self, experience: int, classes: list[int]) -> None:
        if experience == 0:  # the shared pool, never frozen; prompts start as the config says
            prompts = torch.stack([self.new_prompt(classes) for _ in range(self.config.pool_size)])  # (M, L, D)
            self.pool.add_task(self.config.pool_size, prompts=prompts)

    def _freeze(self, experience: int) -> None:
        """Nothing: the shared pool trains in every experience (L2P)."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        return self.pool.trainable_parameters()

    def _select(self, inputs: Any) -> Selection:
        return self.pool.select(self.backbone.query_features(inputs))  # prompts (B, k * L, D)

    def _train_prompts(self, inputs: Any) -> Tensor:
        self._selection = self._select(inputs)
        return self._selection.prompts

    def training_loss(self, inputs: Any, targets: Tensor, *, observe: bool = True) -> Tensor:
        """The answer loss (and ranking loss) under the chosen prompts + ``pull_coef`` x key matching."""
        loss = super().training_loss(inputs, targets, observe=observe)
        return loss + self.config.pull_coef * self.pool.key_matching_loss(self._selection)

    def _logits(self, inputs: Any) -> Tensor:
        if self.pool.size == 0:
            raise RuntimeError("l2p has no prompts yet: call begin_experience() first")
        return self.scores_over(inputs, self.seen_classes(), self._select(inputs).prompts)

    def _generation_prompts(self, inputs: Any) -> Tensor:
        return self._select(inputs).prompts
