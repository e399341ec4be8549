"""``growing_pool`` on a causal LM: a prompt per experience, routed by one key per class."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cl_prompts.index import KeyIndex
from cl_prompts.methods.closed_form import RidgeStatistics
from cl_prompts.methods.features import FeatureCollector
from cl_prompts.methods.generative.base import GenerativeMethod
from cl_prompts.methods.generative.config import GenerativeGrowingPoolConfig
from cl_prompts.methods.prompts import pool_contents
from cl_prompts.methods.registry import register
from cl_prompts.methods.routing import Routing, candidate_tasks_of, rebuild_class_keys
from cl_prompts.pool import PoolConfig, PromptPool


@register
class GenerativeGrowingPool(GenerativeMethod):
    """Prompts in a :class:`PromptPool` (one per task); routing as the encoder ``growing_pool``'s.

    Buffers: ``class_task`` (C,) owner task of each class; ``route_readout`` (M, C) solved
    from ``route_stats`` (random features of the frozen query) when each experience ends.
    The key index holds the readout's column of every seen class.
    """

    name = "growing_pool"
    config_class = GenerativeGrowingPoolConfig
    renews_parameters = True  # each experience's prompt is a new pool.prompts

    def __init__(self, backbone: Any, num_classes: int, config: GenerativeGrowingPoolConfig):
        super().__init__(backbone, num_classes, config)
        c = config
        width = backbone.query_width(c.layers)
        self.pool = PromptPool(PoolConfig(embed_dim=self.hidden_size, prompt_length=c.prompt_length, top_k=1,
                                          index=c.index))
        self.route_stats = RidgeStatistics(width, num_classes, c.projection_dim)
        self.register_buffer("route_readout", torch.zeros(c.projection_dim, num_classes))  # (M, C)
        self.register_buffer("class_task", torch.full((num_classes,), -1, dtype=torch.long))
        self.key_index = KeyIndex(c.projection_dim, c.index)
        self._collector = FeatureCollector()  # each distinct sample once, whatever the epochs

    # ---------------------------------------------------------------- growth
    def _grow(self, experience: int, classes: list[int]) -> None:
        c = self.config
        if c.init_from_previous and self.pool.num_tasks and c.prompt_init != "labels":
            start, stop = self.pool.task_range(self.pool.current_task)
            init = self.pool.lookup(torch.arange(start, stop))[0]  # (1, P, D)
        else:
            init = self.new_prompt(classes)[None]
        self.pool.add_task(1, prompts=init)
        cls = torch.tensor(classes, device=self.class_task.device)
        self.class_task[cls[self.class_task[cls] < 0]] = experience
        self._collector.clear()

    def _freeze(self, experience: int) -> None:
        self.pool.freeze()
        if not self._restoring:  # on load the readout comes from the saved tensors
            if len(self._collector):
                queries, targets = self._collector.tensors()
                device = self.class_task.device
                self.route_stats.add(queries.to(device), targets.to(device))
            self._sum_statistics()
            self.route_readout = self.route_stats.solve(self.config.ridge).to(self.route_readout.dtype)
            self._rebuild_index()
        self._collector.clear()

    def _rebuild_index(self) -> None:
        rebuild_class_keys(self.key_index, self.route_stats, self.route_readout)

    def _after_load(self) -> None:
        self._rebuild_index()

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [self.pool.prompts] if self.pool.prompts is not None and self.pool.prompts.requires_grad else []

    def statistics(self) -> list[Tensor]:
        return self.route_stats.sums()

    # ---------------------------------------------------------------- training
    def observe(self, inputs: Any, targets: Tensor) -> None:
        """Keep the batch's distinct samples' frozen queries: the routing statistics are built at the end."""
        super().observe(inputs, targets)
        inputs, targets = self._observed_rows(inputs, targets)
        if len(targets):
            self._collector.add(inputs, self._query(inputs), targets)

    def _task_prompts(self, tasks: Tensor) -> Tensor:
        """tasks (B,) -> their prompts (B, P, D)."""
        return self.pool.lookup(tasks.to(self.class_task.device))[0]

    def _train_prompts(self, inputs: Any) -> Tensor:
        return self._task_prompts(torch.tensor([self.pool.current_task]))  # (1, P, D)

    # ---------------------------------------------------------------- prediction
    def _query(self, inputs: Any) -> Tensor:
        return self.backbone.query_features(inputs, layers=self.config.layers)  # (B, n * D)

    @torch.no_grad()
    def candidate_tasks(self, inputs: Any) -> tuple[Tensor, Tensor]:
        """Routing logits (B, C) and the candidate tasks (B, m), best first."""
        return self._route(inputs)[1:]

    def _route(self, inputs: Any) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`candidate_tasks` with the routing features (B, M) they come from, first."""
        h = self.route_stats.expand_for_scoring(self._query(inputs))  # (B, M)
        route = h @ self.route_readout  # (B, C)
        m = min(self.config.candidates, max(self.pool.num_tasks, 1))
        return h, route, candidate_tasks_of(self.key_index, h, self.class_task, m, max(self.pool.current_task, 0))

    def _generation_prompts(self, inputs: Any) -> Tensor:
        """The prompt of the task each input is routed to first (B, P, D)."""
        return self._task_prompts(self.predict_task(inputs))

    def predict_task(self, inputs: Any) -> Tensor:
        """(B,) the task the key index ranks first."""
        return self.candidate_tasks(inputs)[1][:, 0]

    def routing(self, inputs: Any) -> Routing:
        queries, route, cands = self._route(inputs)  # (B, M), (B, C), (B, m)
        own = self.class_task[None, None, :] == cands[:, :, None]  # (B, m, C)
        best = route[:, None, :].masked_fill(~own, float("-inf")).amax(-1)  # (B, m)
        return Routing(experience=cands[:, 0], prompt_ids=cands, key_scores=best, queries=queries)

    def routing_keys(self) -> tuple[Tensor, Tensor]:
        solved = torch.nonzero(self.route_stats.class_counts > 0).flatten()
        return self.route_readout.T[solved].clone(), self.class_task[solved].clone()

    def input_prompts(self) -> tuple[Tensor, Tensor]:
        prompts, _, tasks = pool_contents(self.pool)
        return prompts, tasks

    def _logits(self, inputs: Any) -> Tensor:
        """(B, C): each candidate task's classes score answer likelihood under its prompt plus
        ``route_weight`` times their routing logit; every other class ``-inf``."""
        if self.pool.num_tasks == 0:
            raise RuntimeError("growing_pool has no task yet: call begin_experience() first")
        route, cands = self.candidate_tasks(inputs)
        logits = torch.full_like(route, float("-inf"))
        for r in range(cands.shape[1]):
            for task in cands[:, r].unique().tolist():
                rows = torch.nonzero(cands[:, r] == task).flatten()  # inputs with this candidate
                self._score_task(inputs, rows, task, route, logits)
        return logits

    def _score_task(self, inputs: Any, rows: Tensor, task: int, route: Tensor, logits: Tensor) -> None:
        """Write the scores of ``task``'s classes for the inputs ``rows`` into ``logits`` (B, C)."""
        classes = torch.nonzero(self.class_task == task).flatten()
        sub = {k: v[rows] for k, v in inputs.items()}
        scores = self.score(sub, classes, self._task_prompts(torch.tensor([task])))  # (b, A)
        logits[rows[:, None], classes[None, :]] = scores + self.config.route_weight * route[rows][:, classes]

    @torch.no_grad()
    def task_aware_logits(self, inputs: Any, experience: int) -> Tensor:
        """(B, C) with the task given: ``experience``'s classes scored as in prediction, under its
        own prompt (the ceiling routing could reach); every other class ``-inf``."""
        route, _ = self.candidate_tasks(inputs)
        logits = torch.full_like(route, float("-inf"))
        self._score_task(inputs, torch.arange(route.shape[0], device=route.device), experience, route, logits)
        return logits
