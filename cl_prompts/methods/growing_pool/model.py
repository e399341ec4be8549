"""``growing_pool``: per-task prompts, one key per class in a key index, closed-form readouts."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from cl_prompts.index import KeyIndex
from cl_prompts.methods.base import ContinualMethod, batch_size_of
from cl_prompts.methods.closed_form import RidgeStatistics, solve_ridges
from cl_prompts.methods.features import FeatureCollector, FrozenPromptFeatures, pick_feature
from cl_prompts.methods.growing_pool.config import GrowingPoolConfig
from cl_prompts.methods.heads import GrowingHead
from cl_prompts.methods.prompts import pool_contents
from cl_prompts.methods.registry import register
from cl_prompts.methods.routing import Routing, candidate_tasks_of, rebuild_class_keys
from cl_prompts.pool import PoolConfig, PromptPool

# Samples per forward pass when an experience's data is passed through its final prompts.
FREEZE_BATCH = 128
# Prompted features kept for evaluation (CLINC150's test set, 3 tasks each: about 80 MB).
EVAL_FEATURE_BYTES = 256 << 20


@register
class GrowingPool(ContinualMethod):
    """Each experience owns ``prompts_per_task`` prompts; classes' keys route inputs to them.

    Buffers: ``class_task`` (C,) (owner task of each class) and the readouts
    ``route_readout`` / ``prompted_readout`` (M, C), solved from the statistics
    ``route_stats`` (frozen queries) and ``prompted_stats`` (prompted features) at each
    ``end_experience``. The key index holds the columns of ``route_readout`` of the
    classes seen (derived state, rebuilt whenever they are solved).
    """

    name = "growing_pool"
    config_class = GrowingPoolConfig
    renews_parameters = True  # each experience's prompts are a new pool.prompts

    def __init__(self, backbone: Any, num_classes: int, config: GrowingPoolConfig):
        super().__init__(backbone, num_classes, config)
        c, m = config, config.projection_dim
        d = self.hidden_size * min(c.layers, backbone.num_layers)  # width of the readouts' features
        self.pool = PromptPool(  # prompts are token embeddings: the backbone's width
            PoolConfig(embed_dim=self.hidden_size, prompt_length=c.prompt_length, top_k=c.prompts_per_task, index=c.index,
                       prompt_init=c.prompt_init, init_scale=c.prompt_init_scale)
        )
        self.head = GrowingHead(self.hidden_size, num_classes, c.head, c.head_scale)
        self.route_stats = RidgeStatistics(d, num_classes, m)
        self.prompted_stats = RidgeStatistics(d, num_classes, m)
        self.register_buffer("route_readout", torch.zeros(m, num_classes))  # (M, C)
        self.register_buffer("prompted_readout", torch.zeros(m, num_classes))  # (M, C)
        self.register_buffer("class_task", torch.full((num_classes,), -1, dtype=torch.long))
        self.key_index = KeyIndex(m, c.index)
        self._collector = FeatureCollector(keep_inputs=True)
        self._eval_features = FrozenPromptFeatures(EVAL_FEATURE_BYTES)
        self._recycle_pending = False
        self.recycled_from: int | None = None  # the task the open task's prompts were copied from

    # ---------------------------------------------------------------- growth
    def _grow(self, experience: int, classes: list[int]) -> None:
        n = self.config.prompts_per_task
        init = None
        if self.config.init_from_previous and self.pool.num_tasks:
            start, stop = self.pool.task_range(self.pool.current_task)
            init = self.pool.lookup(torch.arange(start, stop))[0]  # (n, L, D)
        # prompt recycling waits for the first training batch: it needs the new task's data
        self._recycle_pending = self.config.init_from_nearest and self.pool.num_tasks > 0
        self.recycled_from = None
        self.pool.add_task(n, prompts=init)
        self.head.grow(classes, train_only_new=True)
        cls = torch.tensor(classes, device=self.class_task.device)
        self.class_task[cls[self.class_task[cls] < 0]] = experience
        self._collector.clear()

    def _freeze(self, experience: int) -> None:
        self.pool.freeze()
        self.head.set_trainable([])
        if not self._restoring:  # on load the readouts come from the saved tensors
            if len(self._collector) or self._ranks is None:  # a data-parallel rank's share may be empty
                queries, targets = self._collector.tensors()
                self.route_stats.add(queries.to(self.class_task.device), targets.to(self.class_task.device))
                with torch.no_grad():  # the experience's samples through its final prompts
                    for inputs, y in self._collector.input_batches(FREEZE_BATCH, self.class_task.device):
                        tasks = torch.full_like(y, experience)
                        self.prompted_stats.add(self._readout_features(inputs, tasks), y)
                        for other in self._confusable_tasks(inputs):  # (B,) earlier tasks, per rank
                            self.prompted_stats.add(self._readout_features(inputs, other), y)
            self._sum_statistics()
            route, prompted = solve_ridges([(self.route_stats, self.config.ridge),
                                            (self.prompted_stats, self.config.prompted_ridge)])
            self.route_readout = route.to(self.route_readout.dtype)
            self.prompted_readout = prompted.to(self.route_readout.dtype)
            self._rebuild_index()
        self._collector.clear()

    def _confusable_tasks(self, inputs: Any) -> list[Tensor]:
        """The earlier tasks the routing ranks first for ``inputs``: ``cross_task_passes`` tensors
        (B,). The key index still holds the earlier classes only (it is rebuilt after this)."""
        n = min(self.config.cross_task_passes, self.pool.num_tasks - 1)
        if n <= 0 or self.key_index.ntotal == 0:
            return []
        _, cands = self.candidate_tasks(inputs, n)  # (B, n), earlier tasks only
        return list(cands.unbind(1))

    def _rebuild_index(self) -> None:
        rebuild_class_keys(self.key_index, self.route_stats, self.route_readout)

    def _after_load(self) -> None:
        self._rebuild_index()

    def trainable_parameters(self) -> list[nn.Parameter]:
        prompts = [self.pool.prompts] if self.pool.prompts is not None else []
        return prompts + self.head.trainable_parameters()

    # ---------------------------------------------------------------- training
    def observe(self, inputs: Any, targets: Tensor) -> None:
        """Keep the batch's distinct samples and frozen queries: the statistics are built at the end."""
        super().observe(inputs, targets)
        if self._recycle_pending:  # here, not in the forward: a data-parallel rank's forward sees a slice
            self._recycle_pending = False
            self.recycled_from = self.nearest_task(inputs)
            self.pool.copy_prompts_from(self.recycled_from)
        inputs, targets = self._observed_rows(inputs, targets)
        if len(targets):
            self._collector.add(inputs, self._query(inputs), targets)

    def statistics(self) -> list[Tensor]:
        return self.route_stats.sums() + self.prompted_stats.sums()

    def training_class_mask(self) -> Tensor:
        return self.current_mask  # each task's head rows are trained on its own classes

    def _train_forward(self, inputs: Any) -> tuple[Tensor, list[Tensor]]:
        tasks = torch.full((batch_size_of(inputs),), self.pool.current_task, dtype=torch.long,
                           device=self.class_task.device)
        return self.head(self._features(inputs, tasks)), []  # the true task while training

    # ---------------------------------------------------------------- prediction
    def _task_prompts(self, tasks: Tensor) -> Tensor:
        """tasks (B,) -> their prompts (B, n * L, D)."""
        n = self.config.prompts_per_task
        ids = tasks[:, None] * n + torch.arange(n, device=tasks.device)  # every task owns n ids
        prompts, _ = self.pool.lookup(ids)  # (B, n, L, D)
        return prompts.reshape(tasks.shape[0], -1, self.hidden_size)

    def _features(self, inputs: Any, tasks: Tensor) -> Tensor:
        """(B, D) the feature the training head sees, through the prompts of ``tasks`` (B,)."""
        out = self.backbone(inputs, input_prompts=self._task_prompts(tasks))
        return pick_feature(out, self.config.feature)

    def _readout_features(self, inputs: Any, tasks: Tensor) -> Tensor:
        """(B, n * D) the prompted readout's input: the last ``layers`` layers' pooled features.

        In evaluation, the features under frozen tasks' prompts are computed once per input."""
        if self.training or torch.is_grad_enabled():
            return self._prompted_pass(inputs, tasks)
        frozen = (tasks + 1) * self.config.prompts_per_task <= self.pool.num_frozen  # (B,)
        return self._eval_features.features(inputs, tasks, frozen, self._prompted_pass)

    def _prompted_pass(self, inputs: Any, tasks: Tensor) -> Tensor:
        """(B, n * D) :meth:`_readout_features`, computed."""
        if self.config.layers == 1:
            return self._features(inputs, tasks)
        out = self.backbone(inputs, input_prompts=self._task_prompts(tasks), layers=self.config.layers)
        return out.layer_features()

    @torch.no_grad()
    def nearest_task(self, inputs: Any) -> int:
        """The earlier task that most inputs of the batch are routed to first (ties: the lower id)."""
        _, candidates = self.candidate_tasks(inputs)  # (B, m): the open task has no solved key yet
        first = candidates[:, 0].cpu()
        return int(torch.bincount(first[first >= 0]).argmax())

    def _query(self, inputs: Any) -> Tensor:
        """(B, n * D) the frozen query of the routing readout."""
        return self.backbone.query_features(inputs, layers=self.config.layers)

    def frozen_query_layers(self) -> int:
        return self.config.layers

    @torch.no_grad()
    def candidate_tasks(self, inputs: Any, m: int | None = None) -> tuple[Tensor, Tensor]:
        """Routing logits (B, C) of the frozen query and the candidate tasks (B, m), best first
        (``m``: the config's ``candidates`` by default)."""
        return self._route(inputs, m)[1:]

    def _route(self, inputs: Any, m: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`candidate_tasks` with the routing features (B, M) they come from, first."""
        h = self.route_stats.expand_for_scoring(self._query(inputs))  # (B, M): the class keys' space
        route = h @ self.route_readout  # (B, C)
        m = min(self.config.candidates if m is None else m, max(self.pool.num_tasks, 1))
        return h, route, candidate_tasks_of(self.key_index, h, self.class_task, m, max(self.pool.current_task, 0))

    def predict_task(self, inputs: Any) -> Tensor:
        """(B,) the task the key index ranks first (the first candidate; no prompted pass)."""
        return self.candidate_tasks(inputs)[1][:, 0]

    def class_similarity(self, inputs: Any) -> Tensor:
        """(B,) cosine to the nearest class mean, in the routing readout's random features of the query."""
        return self.route_stats.class_similarity(self._query(inputs))

    @torch.no_grad()
    def routing(self, inputs: Any) -> Routing:
        """Candidate tasks' prompts; a task's key score is the best routing score of its classes."""
        queries, route, cands = self._route(inputs)  # (B, M), (B, C), (B, m)
        n = self.config.prompts_per_task
        ids = (cands[:, :, None] * n + torch.arange(n, device=cands.device)).flatten(1)  # (B, m * n)
        own = self.class_task[None, None, :] == cands[:, :, None]  # (B, m, C)
        best = route[:, None, :].masked_fill(~own, float("-inf")).amax(-1)  # (B, m)
        return Routing(experience=cands[:, 0], prompt_ids=ids, key_scores=best.repeat_interleave(n, dim=1),
                       queries=queries)

    def routing_keys(self) -> tuple[Tensor, Tensor]:
        """One key per class seen, (K, M): its column of the routing readout; and its experience."""
        solved = torch.nonzero(self.route_stats.class_counts > 0).flatten()
        return self.route_readout.T[solved].clone(), self.class_task[solved].clone()

    def input_prompts(self) -> tuple[Tensor, Tensor]:
        prompts, _, tasks = pool_contents(self.pool)
        return prompts, tasks

    def _logits(self, inputs: Any) -> Tensor:
        if self.key_index.ntotal == 0:  # no readout yet: the open task's head
            if self.pool.num_tasks == 0:
                raise RuntimeError("growing_pool has no task yet: call begin_experience() first")
            return self.head(self._features(inputs, self.candidate_tasks(inputs)[1][:, 0]))
        return self._fuse(*self._candidate_scores(inputs), self.config.fusion_weight)

    @torch.no_grad()
    def predict_with_task(self, inputs: Any) -> tuple[Tensor, Tensor | None]:
        """The prediction and its first candidate task, from one routing."""
        if (self.training and self.is_open) or self.key_index.ntotal == 0:
            return super().predict_with_task(inputs)
        route, cands, prompted = self._candidate_scores(inputs)
        logits = self._fuse(route, cands, prompted, self.config.fusion_weight)
        return logits.masked_fill(~self.seen_mask, float("-inf")), cands[:, 0]

    def _candidate_scores(self, inputs: Any, m: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Routing logits (B, C), candidate tasks (B, m) and each candidate's prompted logits (B, m, C)."""
        route, cands = self.candidate_tasks(inputs, m)
        prompted = torch.stack([self.prompted_stats.expand_for_scoring(self._readout_features(inputs, cands[:, r]))
                                @ self.prompted_readout for r in range(cands.shape[1])], 1)
        return route, cands, prompted

    def _fuse(self, route: Tensor, cands: Tensor, prompted: Tensor, weight: float) -> Tensor:
        """(B, C): each candidate's classes score route + weight * prompted; the rest -inf."""
        logits = torch.full_like(route, float("-inf"))
        for r in range(cands.shape[1]):
            own = self.class_task[None, :] == cands[:, r, None]  # (B, C): the candidate's classes
            logits = torch.where(own, route + weight * prompted[:, r], logits)
        solved = self.route_stats.class_counts > 0
        return logits.masked_fill(~solved, float("-inf"))

    @torch.no_grad()
    def logits_under(self, inputs: Any, variants: Sequence[dict[str, Any]]) -> list[Tensor]:
        """As the base method, with the prompted passes shared: the candidates of a smaller
        ``candidates`` are the first ones of a larger."""
        if self.key_index.ntotal == 0 or any(set(v) - {"candidates", "fusion_weight"} for v in variants):
            return super().logits_under(inputs, variants)
        configs = [dataclasses.replace(self.config, **v) for v in variants]  # validates each
        route, cands, prompted = self._candidate_scores(inputs, max(c.candidates for c in configs))
        seen = self.seen_mask
        return [self._fuse(route, cands[:, : min(c.candidates, cands.shape[1])], prompted, c.fusion_weight)
                .masked_fill(~seen, float("-inf")) for c in configs]
