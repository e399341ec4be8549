"""``dualprompt``: a shared G-prompt and per-task E-prompts with keys, as attention prefixes."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cl_prompts.methods.base import ContinualMethod
from cl_prompts.methods.dualprompt.config import DualPromptConfig
from cl_prompts.methods.heads import GrowingHead
from cl_prompts.methods.prompts import check_layers, init_prompts, pool_contents
from cl_prompts.methods.registry import register
from cl_prompts.methods.routing import Routing
from cl_prompts.pool import PoolConfig, PromptPool


@register
class DualPrompt(ContinualMethod):
    """E-prompts live in a pool, one task segment of one prompt per experience.

    A pool prompt holds every E-layer's key and value prefix: its ``prompt_length`` is
    ``len(e_layers) * 2 * e_length``, reshaped to (layers, 2, e_length, D) when used.
    Finished tasks' E-prompts and keys are frozen by the pool; the G-prompt is shared
    and trains in every experience.
    """

    name = "dualprompt"
    config_class = DualPromptConfig
    renews_parameters = True  # each experience's E-prompt is a new pool.prompts / pool.keys

    def __init__(self, backbone: Any, num_classes: int, config: DualPromptConfig):
        super().__init__(backbone, num_classes, config)
        c = config
        check_layers("g_layers", c.g_layers, backbone.num_layers)
        check_layers("e_layers", c.e_layers, backbone.num_layers)
        d = self.hidden_size
        self.g_prompt = None
        if c.g_layers:  # (G, 2, Lg, D)
            shape = (len(c.g_layers), 2, c.g_length, d)
            self.g_prompt = nn.Parameter(init_prompts(shape, c.prompt_init, c.prompt_init_scale))
        self.pool = PromptPool(
            PoolConfig(
                embed_dim=d,
                prompt_length=len(c.e_layers) * 2 * c.e_length,
                top_k=1,
                index=c.index,
                prompt_init=c.prompt_init,
                init_scale=c.prompt_init_scale,
                key_init=c.key_init,
            )
        )
        self.head = GrowingHead(d, num_classes)

    def _grow(self, experience: int, classes: list[int]) -> None:
        previous = None
        if self.config.copy_previous_prompt and self.pool.size > 0:  # the official shared_prompt_pool
            previous = self.pool.lookup(torch.tensor([self.pool.size - 1]))[0]  # (1, Lp, D)
        self.pool.add_task(1, prompts=previous)  # freezes the previous task's E-prompt and key
        if self.g_prompt is not None:
            self.g_prompt.requires_grad_(True)
        self.head.grow(classes, train_only_new=self.config.mask_absent)

    def _freeze(self, experience: int) -> None:
        self.pool.freeze()
        if self.g_prompt is not None:
            self.g_prompt.requires_grad_(False)  # until the next experience
        self.head.set_trainable([])

    def frozen_query_layers(self) -> int:
        return 1  # its query: the last layer's pooled feature

    def trainable_parameters(self) -> list[nn.Parameter]:
        g = [self.g_prompt] if self.g_prompt is not None and self.g_prompt.requires_grad else []
        return g + self.pool.trainable_parameters() + self.head.trainable_parameters()

    def _prefixes(self, e_prompts: Tensor) -> dict[int, Tensor]:
        """e_prompts (B, 1 * Lp, D) -> {layer: (B, 2, L, D)} for G- and E-layers."""
        c = self.config
        b = e_prompts.shape[0]
        e = e_prompts.reshape(b, len(c.e_layers), 2, c.e_length, self.hidden_size)
        out = {layer: e[:, i] for i, layer in enumerate(c.e_layers)}
        if self.g_prompt is not None:
            for i, layer in enumerate(c.g_layers):
                out[layer] = self.g_prompt[i].unsqueeze(0)  # (1, 2, Lg, D), broadcast
        return out

    def _select(self, inputs: Any, tasks: list[int] | None, query: Tensor | None = None):
        if query is None:
            query = self.backbone.query_features(inputs)  # (B, D) frozen
        return self.pool.select(query, k=1, tasks=tasks)

    def _train_forward(self, inputs: Any) -> tuple[Tensor, list[Tensor]]:
        sel = self._select(inputs, tasks=[self.pool.current_task])  # the true task's E-prompt
        out = self.backbone(inputs, prefix_prompts=self._prefixes(sel.prompts))
        return self.head(out.pooled), [self.config.pull_coef * self.pool.key_matching_loss(sel)]

    def _logits(self, inputs: Any) -> Tensor:
        sel = self._select(inputs, tasks=None)
        return self.head(self.backbone(inputs, prefix_prompts=self._prefixes(sel.prompts)).pooled)

    @torch.no_grad()
    def predict_task(self, inputs: Any) -> Tensor:
        """(B,) the experience whose E-prompt key matches best."""
        return self.pool.task_of(self._select(inputs, tasks=None).ids[:, 0])

    @torch.no_grad()
    def routing(self, inputs: Any) -> Routing:
        """The E-prompt whose key matches best, and its experience."""
        query = self.backbone.query_features(inputs)  # (B, D)
        sel = self._select(inputs, tasks=None, query=query)
        return Routing(experience=self.pool.task_of(sel.ids[:, 0]), prompt_ids=sel.ids, key_scores=sel.scores,
                       queries=query)

    def routing_keys(self) -> tuple[Tensor, Tensor]:
        """The E-prompts' keys and their experiences."""
        _, keys, tasks = pool_contents(self.pool)
        return keys, tasks
