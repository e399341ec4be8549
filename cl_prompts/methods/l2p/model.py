"""``l2p``: a shared prompt pool, top-k prompts by key match prepended to the input."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from cl_prompts.methods.base import ContinualMethod
from cl_prompts.methods.features import pick_feature
from cl_prompts.methods.heads import GrowingHead
from cl_prompts.methods.l2p.config import L2PConfig
from cl_prompts.methods.registry import register
from cl_prompts.methods.routing import SharedPoolInspection
from cl_prompts.pool import PoolConfig, PromptPool


@register
class L2P(SharedPoolInspection, ContinualMethod):
    """One pool segment holds the whole shared pool; it keeps training in every experience.

    Only the head rows of past classes are frozen (with masking they get no gradient
    anyway). Selection is task-agnostic at train and test time.
    """

    name = "l2p"
    config_class = L2PConfig

    def __init__(self, backbone: Any, num_classes: int, config: L2PConfig):
        super().__init__(backbone, num_classes, config)
        c = config
        self.pool = PromptPool(
            PoolConfig(
                embed_dim=self.hidden_size,
                prompt_length=c.prompt_length,
                top_k=c.top_k,
                index=c.index,
                frequency_penalty=c.frequency_penalty,
                prompt_init=c.prompt_init,
                init_scale=c.prompt_init_scale,
                key_init=c.key_init,
            )
        )
        self.head = GrowingHead(self.hidden_size, num_classes)

    def _grow(self, experience: int, classes: list[int]) -> None:
        if experience == 0:
            self.pool.add_task(self.config.pool_size)  # the shared pool, never frozen
        self.head.grow(classes, train_only_new=self.config.mask_absent)

    def _freeze(self, experience: int) -> None:
        self.head.set_trainable([])

    def frozen_query_layers(self) -> int:
        return 1  # its query: the last layer's pooled feature

    def trainable_parameters(self) -> list[nn.Parameter]:
        return self.pool.trainable_parameters() + self.head.trainable_parameters()

    def _forward(self, inputs: Any, batchwise: bool = False):
        query = self.backbone.query_features(inputs)  # (B, D) frozen
        sel = self.pool.select(query, batchwise=batchwise)  # prompts (B, k * L, D)
        out = self.backbone(inputs, input_prompts=sel.prompts)
        return self.head(pick_feature(out, self.config.feature)), sel

    def _train_forward(self, inputs: Any) -> tuple[Tensor, list[Tensor]]:
        logits, sel = self._forward(inputs, batchwise=self.config.batchwise_selection)
        return logits, [self.config.pull_coef * self.pool.key_matching_loss(sel)]

    def _logits(self, inputs: Any) -> Tensor:
        return self._forward(inputs)[0]
