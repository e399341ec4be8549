"""Property tests (hypothesis): random sequences of add_task / train / freeze / select /
save / load keep the pool's invariants."""

from __future__ import annotations

import tempfile

import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cl_prompts.pool import PoolConfig, PromptPool

D, L = 8, 2


class PoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.index = "flat"
        self.pool: PromptPool | None = None
        self.frozen_p = torch.empty(0, L, D)  # what the frozen part must stay equal to
        self.frozen_k = torch.empty(0, D)
        self.opt: torch.optim.Optimizer | None = None
        self.tmp = tempfile.TemporaryDirectory()

    def teardown(self) -> None:
        self.tmp.cleanup()

    @rule(index=st.sampled_from(["flat", "torch"]), backend=st.sampled_from(["auto", "faiss"]))
    @precondition(lambda self: self.pool is None)
    def create(self, index, backend):
        self.pool = PromptPool(
            PoolConfig(embed_dim=D, prompt_length=L, top_k=2, index=index, flat_backend=backend)
        )
        self.pool.train()

    @rule(n=st.integers(1, 6), seed=st.integers(0, 2**16))
    @precondition(lambda self: self.pool is not None)
    def add_task(self, n, seed):
        pool = self.pool
        size_before = pool.size
        self._remember_frozen_after(pool.freeze)
        ids = pool.add_task(n, generator=torch.Generator().manual_seed(seed))
        assert ids.tolist() == list(range(size_before, size_before + n))
        self.opt = torch.optim.Adam(pool.trainable_parameters(), lr=0.05, weight_decay=0.1)

    @rule()
    @precondition(lambda self: self.pool is not None)
    def freeze(self):
        self._remember_frozen_after(self.pool.freeze)

    def _remember_frozen_after(self, action):
        action()
        self.frozen_p = self.pool.frozen_prompts.clone()
        self.frozen_k = self.pool.frozen_keys.clone()

    @rule(seed=st.integers(0, 2**16), restrict=st.booleans())
    @precondition(lambda self: self.pool is not None and self.pool.trainable_parameters())
    def train_step(self, seed, restrict):
        pool = self.pool
        q = torch.randn(4, D, generator=torch.Generator().manual_seed(seed))
        k = min(2, pool.task_sizes[-1]) if restrict else min(2, pool.size)
        sel = pool.select(q, k=k, tasks=[pool.current_task] if restrict else None)
        loss = pool.key_matching_loss(sel) + sel.prompts.square().mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    @rule(seed=st.integers(0, 2**16), b=st.integers(1, 5), k=st.integers(1, 4), data=st.data())
    @precondition(lambda self: self.pool is not None and self.pool.size > 0)
    def select(self, seed, b, k, data):
        pool = self.pool
        tasks = data.draw(
            st.none() | st.lists(st.integers(0, pool.num_tasks - 1), min_size=1, max_size=3)
        )
        allowed = list(range(pool.num_tasks)) if tasks is None else sorted(set(tasks))
        selectable = sum(pool.task_sizes[t] for t in allowed)
        k = min(k, selectable)
        q = torch.randn(b, D, generator=torch.Generator().manual_seed(seed))
        sel = pool.select(q, k=k, tasks=tasks)
        ids = sel.ids
        assert ids.shape == (b, k) and sel.prompts.shape == (b, k * L, D)
        assert bool((ids >= 0).all() and (ids < pool.size).all())
        assert all(len(set(row.tolist())) == k for row in ids)  # unique per row
        assert set(pool.task_of(ids).flatten().tolist()) <= set(allowed)
        # exact index: chosen scores are the exact top-k cosine scores
        _, keys = pool.lookup(torch.arange(pool.size))
        cos = F.normalize(q, dim=1) @ F.normalize(keys.detach(), dim=1).T
        mask = torch.isin(pool.task_of(torch.arange(pool.size)), torch.tensor(allowed))
        cos[:, ~mask] = float("-inf")
        ref = torch.topk(cos, k, dim=1).values
        torch.testing.assert_close(sel.scores.detach(), ref, atol=1e-5, rtol=0)

    @rule(seed=st.integers(0, 2**16))
    @precondition(lambda self: self.pool is not None and self.pool.size >= 2)
    def save_load(self, seed):
        pool = self.pool
        pool.save_pretrained(self.tmp.name)
        loaded = PromptPool.from_pretrained(self.tmp.name)
        q = torch.randn(6, D, generator=torch.Generator().manual_seed(seed))
        pool.eval(), loaded.eval()
        assert torch.equal(pool.select(q).ids, loaded.select(q).ids)
        assert loaded.task_sizes == pool.task_sizes
        pool.train()
        # carry on with the loaded pool: training continues where it stopped
        self.pool = loaded
        loaded.train()
        if loaded.trainable_parameters():
            self.opt = torch.optim.Adam(loaded.trainable_parameters(), lr=0.05, weight_decay=0.1)

    @invariant()
    def frozen_unchanged_and_consistent(self):
        pool = self.pool
        if pool is None:
            return
        assert torch.equal(pool.frozen_prompts, self.frozen_p)
        assert torch.equal(pool.frozen_keys, self.frozen_k)
        trainable = pool.task_sizes[-1] if pool.trainable_parameters() else 0
        assert pool.num_frozen + trainable == pool.size == sum(pool.task_sizes)
        assert pool.usage.shape == (pool.size,)
        assert pool.index.ntotal in (0, pool.num_frozen)  # frozen keys indexed once each
        assert all(not p.requires_grad for p in (pool.frozen_prompts, pool.frozen_keys))


PoolMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPoolProperties = PoolMachine.TestCase
