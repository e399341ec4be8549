"""``joint``: a linear probe over all seen data, with a replay memory of frozen features."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cl_prompts.methods.base import ContinualMethod
from cl_prompts.methods.features import FeatureCollector
from cl_prompts.methods.heads import GrowingHead
from cl_prompts.methods.joint.config import JointConfig
from cl_prompts.methods.registry import register


@register
class Joint(ContinualMethod):
    """Head over frozen features, trained on the current batch plus replayed earlier samples."""

    name = "joint"
    config_class = JointConfig
    data_parallel_refusal = ("joint draws its replayed rows from the global random generator in each "
                             "forward, so every rank would replay the same rows; run it in one process")

    def __init__(self, backbone: Any, num_classes: int, config: JointConfig):
        super().__init__(backbone, num_classes, config)
        self.head = GrowingHead(self.hidden_size, num_classes, config.head, config.head_scale)
        # the memory of earlier experiences: (N, D) frozen features and (N,) targets
        self.register_buffer("memory_features", torch.zeros(0, self.hidden_size))
        self.register_buffer("memory_targets", torch.zeros(0, dtype=torch.long))
        self._collector = FeatureCollector()  # the open experience's distinct samples

    def _grow(self, experience: int, classes: list[int]) -> None:
        self.head.grow(classes, train_only_new=False)  # every class keeps training: not continual
        self._collector.clear()

    def _freeze(self, experience: int) -> None:
        self.head.set_trainable([])
        if len(self._collector):
            feats, tgts = self._collector.tensors()
            self.memory_features = torch.cat([self.memory_features, feats.to(self.memory_features)])
            self.memory_targets = torch.cat([self.memory_targets, tgts.to(self.memory_targets.device)])
        self._collector.clear()

    def frozen_query_layers(self) -> int:
        return 1  # its query: the last layer's pooled feature

    def trainable_parameters(self) -> list[nn.Parameter]:
        return self.head.trainable_parameters()

    def observe(self, inputs: Any, targets: Tensor) -> None:
        """Collect the batch's frozen features: they join the memory at the end of the experience."""
        super().observe(inputs, targets)
        self._collector.add(inputs, self.backbone.query_features(inputs), targets)

    def _train_forward(self, inputs: Any) -> tuple[Tensor, list[Tensor]]:
        """Logits of the batch, and the loss of ``replay_ratio * B`` features drawn from the memory.

        The replay term is summed over the drawn rows and divided by the batch size B, so
        added to the batch's mean cross-entropy every sample, current or replayed, weighs
        the same (1 / B).
        """
        q = self.backbone.query_features(inputs)  # (B, D)
        logits = self.head(q)
        n_mem = self.memory_targets.shape[0]
        if not n_mem:
            return logits, []
        b = q.shape[0]
        pick = torch.randint(n_mem, (max(1, round(self.config.replay_ratio * b)),), device=self.memory_targets.device)
        mem_logits = self.head(self.memory_features[pick].to(q)).masked_fill(~self.seen_mask, float("-inf"))
        replay = F.cross_entropy(mem_logits, self.memory_targets[pick].to(q.device), reduction="sum") / b
        return logits, [replay]

    def _logits(self, inputs: Any) -> Tensor:
        return self.head(self.backbone.query_features(inputs))

    def extra_state(self) -> dict[str, Any]:
        return {"memory_size": int(self.memory_targets.shape[0])}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        n = int(state["memory_size"])  # size the buffers so load_state_dict fits
        self.memory_features = self.memory_features.new_zeros(n, self.hidden_size)
        self.memory_targets = self.memory_targets.new_zeros(n)
