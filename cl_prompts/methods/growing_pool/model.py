"""``growing_pool``: per-task prompts, many frozen-query keys per task, task picked by a key index."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cl_prompts.index import KeyIndex
from cl_prompts.methods.base import ContinualMethod, batch_size_of
from cl_prompts.methods.common import FeatureCollector, pick_feature
from cl_prompts.methods.growing_pool.config import GrowingPoolConfig
from cl_prompts.methods.heads import GrowingHead
from cl_prompts.methods.registry import register
from cl_prompts.pool import PoolConfig, PromptPool


def make_keys(feats: Tensor, targets: Tensor, key_mode: str) -> Tensor:
    """Unit keys (K, D) from one task's frozen queries feats (N, D) and targets (N,)."""
    feats = F.normalize(feats.float(), dim=1)
    if key_mode == "task_centroid":
        return F.normalize(feats.mean(0, keepdim=True), dim=1)
    if key_mode == "samples":
        return feats
    classes = targets.unique()  # sorted
    return F.normalize(torch.stack([feats[targets == c].mean(0) for c in classes]), dim=1)


@register
class GrowingPool(ContinualMethod):
    """Each experience owns ``prompts_per_task`` pool prompts and the keys computed from its data.

    Keys live in the buffers ``key_bank`` (K, D) and ``key_task`` (K,) (the source of
    truth) and in a :class:`KeyIndex` rebuilt from them (derived state). The pool's own
    key of each prompt is set to the task's query centroid (``key_mode="task_centroid"``
    selects through it). ``predict_task`` reports the task picked for each input.
    """

    name = "growing_pool"
    config_class = GrowingPoolConfig
    renews_parameters = True  # each experience's prompts are a new pool.prompts

    def __init__(self, backbone: Any, num_classes: int, config: GrowingPoolConfig):
        super().__init__(backbone, num_classes, config)
        c, d = config, self.hidden_size
        self.pool = PromptPool(
            PoolConfig(
                embed_dim=d,
                prompt_length=c.prompt_length,
                top_k=c.prompts_per_task,
                index=c.index,
                prompt_init=c.prompt_init,
                init_scale=c.prompt_init_scale,
            )
        )
        self.head = GrowingHead(d, num_classes, c.head, c.head_scale)
        self.register_buffer("key_bank", torch.zeros(0, d))  # (K, D) unit keys
        self.register_buffer("key_task", torch.zeros(0, dtype=torch.long))  # (K,) owner task
        self.register_buffer("class_task", torch.full((num_classes,), -1, dtype=torch.long))
        self.key_index = KeyIndex(d, c.index)
        self._collector = FeatureCollector()

    # ---------------------------------------------------------------- growth
    def _grow(self, experience: int, classes: list[int]) -> None:
        n = self.config.prompts_per_task
        init = None
        if self.config.init_from_previous and self.pool.num_tasks:
            start, stop = self.pool.task_range(self.pool.current_task)
            init = self.pool.lookup(torch.arange(start, stop))[0]  # (n, L, D)
        self.pool.add_task(n, prompts=init)
        self.head.grow(classes, train_only_new=True)
        cls = torch.tensor(classes, device=self.class_task.device)
        self.class_task[cls[self.class_task[cls] < 0]] = experience
        self._collector.clear()

    def _freeze(self, experience: int) -> None:
        if not self._restoring:  # on load the keys come from the saved tensors
            feats, targets = self._collector.tensors()
            keys = make_keys(feats, targets, self.config.key_mode).to(self.key_bank)
            with torch.no_grad():  # the pool's key of each prompt: the task centroid
                centroid = make_keys(feats, targets, "task_centroid").to(self.key_bank)
                self.pool.keys.copy_(centroid.expand_as(self.pool.keys))
            owner = torch.full((keys.shape[0],), experience, dtype=torch.long, device=keys.device)
            self.key_bank = torch.cat([self.key_bank, keys])
            self.key_task = torch.cat([self.key_task, owner])
            self._rebuild_index()
        self._collector.clear()
        self.pool.freeze()
        self.head.set_trainable([])

    def _rebuild_index(self) -> None:
        self.key_index.reset()
        if self.key_bank.shape[0]:
            self.key_index.add(self.key_bank, torch.arange(self.key_bank.shape[0], device=self.key_bank.device))

    def extra_state(self) -> dict[str, Any]:
        return {"num_keys": int(self.key_bank.shape[0])}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        k = int(state["num_keys"])  # size the buffers so load_state_dict fits
        self.key_bank = self.key_bank.new_zeros(k, self.hidden_size)
        self.key_task = self.key_task.new_zeros(k)

    def _after_load(self) -> None:
        self._rebuild_index()

    def trainable_parameters(self) -> list[nn.Parameter]:
        # the pool's keys are statistics (set at end_experience), never trained
        prompts = [self.pool.prompts] if self.pool.prompts is not None else []
        return prompts + self.head.trainable_parameters()

    # ---------------------------------------------------------------- prompts
    def _task_prompts(self, tasks: Tensor) -> Tensor:
        """tasks (B,) -> their prompts (B, n * L, D)."""
        n = self.config.prompts_per_task
        ids = tasks[:, None] * n + torch.arange(n, device=tasks.device)  # every task owns n ids
        prompts, _ = self.pool.lookup(ids)  # (B, n, L, D)
        return prompts.reshape(tasks.shape[0], -1, self.hidden_size)

    def _features(self, inputs: Any, tasks: Tensor) -> Tensor:
        out = self.backbone(inputs, input_prompts=self._task_prompts(tasks))
        return pick_feature(out, self.config.feature)  # (B, D)

    def observe(self, inputs: Any, targets: Tensor) -> None:
        """Collect the batch's frozen queries: the task's keys are built from them at the end."""
        super().observe(inputs, targets)
        self._collector.add(inputs, self.backbone.query_features(inputs), targets)

    def training_class_mask(self) -> Tensor:
        return self.current_mask  # each task's head rows are trained on its own classes

    def _train_forward(self, inputs: Any) -> tuple[Tensor, list[Tensor]]:
        tasks = torch.full((batch_size_of(inputs),), self.pool.current_task, dtype=torch.long, device=self.class_task.device)
        return self.head(self._features(inputs, tasks)), []  # the true task while training

    @torch.no_grad()
    def predict_task(self, inputs: Any) -> Tensor:
        """(B,) the task whose keys are nearest (a vote of the ``vote_k`` nearest keys)."""
        q = F.normalize(self.backbone.query_features(inputs).float(), dim=1)  # (B, D)
        if self.key_index.ntotal == 0:  # first experience still open: it is the only task
            if self.pool.num_tasks == 0:
                raise RuntimeError("growing_pool has no task yet: call begin_experience() first")
            return torch.full((q.shape[0],), self.pool.current_task, dtype=torch.long, device=q.device)
        k = min(self.config.vote_k, self.key_index.ntotal)
        scores, ids = self.key_index.search(q, k)  # (B, k)
        valid = ids >= 0
        owners = self.key_task[ids.clamp(min=0)]  # (B, k)
        # votes, ties broken by the summed similarity (scores < 1 << one vote)
        weight = valid.float() * (1.0 + 1e-3 * scores.clamp(-1, 1).nan_to_num(0.0))
        votes = torch.zeros(q.shape[0], self.pool.num_tasks, device=q.device)
        votes.scatter_add_(1, owners, weight)
        return votes.argmax(dim=1)

    def _logits(self, inputs: Any) -> Tensor:
        tasks = self.predict_task(inputs)
        logits = self.head(self._features(inputs, tasks))  # (B, C)
        if self.config.restrict_to_task:
            logits = logits.masked_fill(self.class_task[None, :] != tasks[:, None], float("-inf"))
        return logits
