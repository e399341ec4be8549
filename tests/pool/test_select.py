"""PromptPool.select: exactness, merging frozen + trainable, restriction, options, grads."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from cl_prompts.pool import PoolConfig, PromptPool, Selection

D, L = 16, 3


def make_pool(index="flat", sizes=(6, 5, 4), k=3, **kw) -> PromptPool:
    torch.manual_seed(0)
    pool = PromptPool(PoolConfig(embed_dim=D, prompt_length=L, top_k=k, index=index, **kw))
    for n in sizes:
        pool.add_task(n)
    return pool


def exact_ids(pool: PromptPool, q: torch.Tensor, k: int, tasks=None) -> torch.Tensor:
    _, keys = pool.lookup(torch.arange(pool.size))
    s = F.normalize(q, dim=1) @ F.normalize(keys.detach(), dim=1).T
    if tasks is not None:
        allowed = torch.isin(pool.task_of(torch.arange(pool.size)), torch.tensor(tasks))
        s[:, ~allowed] = float("-inf")
    return torch.topk(s, k, dim=1).indices


@pytest.mark.parametrize("index,shards", [("flat", 1), ("torch", 1), ("flat", 2)])
def test_selection_equals_exact_cosine_topk(index, shards):
    pool = make_pool(index, index_shards=shards)
    q = torch.randn(32, D) * 5  # unnormalised on purpose
    sel = pool.select(q)
    assert isinstance(sel, Selection) and sel.k == 3
    assert torch.equal(sel.ids, exact_ids(pool, q, 3))
    # scores are cosine similarities, best first
    _, keys = pool.lookup(sel.ids)
    cos = F.cosine_similarity(q[:, None, :], keys, dim=-1)
    torch.testing.assert_close(sel.scores, cos, atol=1e-6, rtol=0)
    assert bool((sel.scores[:, :-1] >= sel.scores[:, 1:] - 1e-6).all())


def test_prompts_are_chosen_prompts_concatenated():
    pool = make_pool()
    q = torch.randn(4, D)
    sel = pool.select(q, k=2)
    assert sel.prompts.shape == (4, 2 * L, D)
    prompts, _ = pool.lookup(sel.ids)  # (4, 2, L, D)
    assert torch.equal(sel.prompts, prompts.reshape(4, 2 * L, D))


def test_selection_spans_frozen_and_trainable_segments():
    pool = make_pool(sizes=(5, 5))
    # put a trainable key (id 7) and a frozen key (id 2) right on the query
    q = torch.randn(1, D)
    with torch.no_grad():
        pool.keys[2] = q[0] * 3
        pool.frozen_keys[2] = q[0]
    pool.rebuild_index()
    ids = pool.select(q, k=2).ids[0].tolist()
    assert sorted(ids) == [2, 7]


@pytest.mark.parametrize("shards", [1, 2])
def test_restrict_to_tasks(shards):
    pool = make_pool(index_shards=shards)  # 2: the frozen keys in two faiss shards
    q = torch.randn(20, D)
    for tasks in ([2], [0], [0, 2], [1, 2]):
        sel = pool.select(q, tasks=tasks)
        assert set(pool.task_of(sel.ids).flatten().tolist()) <= set(tasks)
        assert torch.equal(sel.ids, exact_ids(pool, q, 3, tasks))


def test_hnsw_pool_recall_against_exact():
    torch.manual_seed(1)
    pool = PromptPool(PoolConfig(embed_dim=D, prompt_length=1, top_k=5, index="HNSW16", ef_search=64))
    for _ in range(4):
        pool.add_task(200)
    q = torch.randn(50, D)
    found, truth = pool.select(q).ids, exact_ids(pool, q, 5)
    recall = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, truth, strict=True))
    assert recall / truth.numel() >= 0.9


def test_key_matching_loss_value_and_gradient():
    pool = make_pool(sizes=(4, 4))
    q = torch.randn(6, D)
    sel = pool.select(q, k=2)
    loss = pool.key_matching_loss(sel)
    torch.testing.assert_close(loss, (1 - sel.scores).sum(1).mean())
    loss.backward()
    chosen = set((sel.ids - 4)[sel.ids >= 4].tolist())
    for row in range(4):
        has_grad = bool(pool.keys.grad[row].abs().sum() > 0)
        assert has_grad == (row in chosen), row


def test_gradients_reach_only_chosen_trainable_rows():
    pool = make_pool(sizes=(5, 6))
    q = torch.randn(3, D)
    sel = pool.select(q, k=2)
    (sel.prompts.square().sum() + pool.key_matching_loss(sel)).backward()
    chosen = set((sel.ids - 5)[sel.ids >= 5].tolist())
    assert chosen, "test needs at least one trainable row chosen"
    for row in range(6):
        got = bool(pool.prompts.grad[row].abs().sum() > 0)
        assert got == (row in chosen)
    assert not pool.frozen_prompts.requires_grad and pool.frozen_prompts.grad is None
    assert pool.trainable_parameters() == [pool.prompts, pool.keys]


def test_batchwise_gives_every_row_the_most_frequent_ids():
    pool = make_pool(sizes=(10,), k=2)
    pool.train()
    q = torch.randn(16, D)
    per_row = pool.select(q, k=2).ids
    sel = pool.select(q, k=2, batchwise=True)
    assert bool((sel.ids == sel.ids[0]).all())
    counts = torch.bincount(per_row.flatten(), minlength=10)
    assert counts[sel.ids[0]].min() >= counts.sort(descending=True).values[1]
    pool.eval()
    with pytest.warns(UserWarning, match="leaks task identity"):
        pool.select(q, batchwise=True)


def test_usage_counts_only_in_training():
    pool = make_pool(sizes=(5,), k=2)
    q = torch.randn(7, D)
    pool.eval()
    pool.select(q)
    assert int(pool.usage.sum()) == 0
    pool.train()
    sel = pool.select(q)
    assert torch.equal(pool.usage, torch.bincount(sel.ids.flatten(), minlength=5))


def test_frequency_penalty_diversifies_across_tasks():
    torch.manual_seed(3)
    q = torch.randn(64, D)
    chosen = {}
    for lam in (0.0, 10.0):
        pool = PromptPool(PoolConfig(embed_dim=D, prompt_length=1, top_k=2, frequency_penalty=lam))
        pool.add_task(8, keys=torch.randn(8, D))
        pool.train()
        first = pool.select(q).ids  # task 0 training: usage recorded
        pool.add_task(4, keys=torch.randn(4, D))
        chosen[lam] = pool.select(q).ids
    used_before = set(first.flatten().tolist())
    old_hits = {lam: torch.isin(ids, torch.tensor(sorted(used_before))).sum() for lam, ids in chosen.items()}
    assert old_hits[10.0] < old_hits[0.0]
    pool.eval()  # no penalty at test time: plain cosine ranking
    assert torch.equal(pool.select(q).ids, exact_ids(pool, q, 2))


def test_prompts_on_other_device_than_query_and_float64():
    pool = make_pool().double()
    q = torch.randn(5, D, dtype=torch.float32)
    sel = pool.select(q)
    assert sel.prompts.dtype == torch.float64
    assert torch.equal(sel.ids, exact_ids(pool, q.double(), 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("index", ["flat", "HNSW16"])
def test_gpu_prompts_cpu_index(index):
    pool = make_pool(index).cuda()
    q = torch.randn(9, D, device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = pool.select(q)
    assert sel.ids.device.type == "cuda" and sel.prompts.device.type == "cuda"
    assert torch.equal(sel.ids.cpu(), exact_ids(pool.cpu(), q.cpu(), 3))


def test_deepcopy_of_pool_selects_identically():
    import copy

    pool = make_pool("HNSW16")
    dup = copy.deepcopy(pool)
    q = torch.randn(10, D)
    assert torch.equal(dup.select(q).ids, pool.select(q).ids)
    assert dup.keys is not pool.keys and torch.equal(dup.keys, pool.keys)


def test_lookup_gradient_is_the_same_on_every_run_with_several_threads():
    # Advanced indexing's backward adds repeated ids with parallel atomics on CPU (from
    # 32768 elements on), in an order that changes between runs; lookup must not.
    pool = PromptPool(PoolConfig(embed_dim=384, prompt_length=32, top_k=1, index="torch"))
    pool.add_task(num_prompts=1)
    ids = torch.zeros(32, 1, dtype=torch.long)  # a whole batch on the one prompt of its task
    weights = torch.randn(32, 1, 32, 384, generator=torch.Generator().manual_seed(0))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grads = set()
        for _ in range(12):
            pool.prompts.grad = None
            prompts, _ = pool.lookup(ids)  # (32, 1, 32, 384)
            (prompts * weights).sum().backward()
            grads.add(pool.prompts.grad.numpy().tobytes())
    finally:
        torch.set_num_threads(threads)
    assert len(grads) == 1
