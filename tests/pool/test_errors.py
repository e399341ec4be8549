"""Every bad input gets a clear ValueError / TypeError naming the problem."""

from __future__ import annotations

import pytest
import torch

from cl_prompts.pool import PoolConfig, PromptPool

D = 8


@pytest.fixture
def pool() -> PromptPool:
    p = PromptPool(PoolConfig(embed_dim=D, prompt_length=2, top_k=2))
    p.add_task(3)
    p.add_task(2)
    return p


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"embed_dim": 0}, ValueError, "embed_dim must be > 0"),
        ({"embed_dim": -4}, ValueError, "embed_dim must be > 0"),
        ({"embed_dim": 8.0}, TypeError, "embed_dim must be an int"),
        ({"embed_dim": 8, "prompt_length": 0}, ValueError, "prompt_length must be > 0"),
        ({"embed_dim": 8, "top_k": 0}, ValueError, "top_k must be > 0"),
        ({"embed_dim": 8, "top_k": True}, TypeError, "top_k must be an int"),
        ({"embed_dim": 8, "index": ""}, TypeError, "index must be a non-empty string"),
        ({"embed_dim": 8, "frequency_penalty": -1.0}, ValueError, "frequency_penalty must be >= 0"),
        ({"embed_dim": 8, "frequency_penalty": float("nan")}, ValueError, "finite"),
        ({"embed_dim": 8, "init_scale": 0.0}, ValueError, "init_scale must be > 0"),
        ({"embed_dim": 8, "prompt_init": "zeros"}, ValueError, "prompt_init"),
        ({"embed_dim": 8, "flat_backend": "gpu"}, ValueError, "flat_backend"),
        ({"embed_dim": 8, "ef_search": 0}, ValueError, "ef_search must be > 0"),
        ({"embed_dim": 8, "index_shards": 0}, ValueError, "index_shards must be > 0"),
        ({"embed_dim": 8, "index": "torch", "index_shards": 2}, ValueError, "needs a faiss index"),
    ],
)
def test_bad_config(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        PoolConfig(**kwargs)


def test_unknown_index_string():
    with pytest.raises(ValueError, match="faiss index_factory string.*'HSNW32'"):
        PromptPool(PoolConfig(embed_dim=D, index="HSNW32"))


def test_config_type_and_unknown_fields():
    with pytest.raises(TypeError, match="config must be a PoolConfig"):
        PromptPool({"embed_dim": 8})
    with pytest.raises(ValueError, match=r"unknown PoolConfig fields \['width'\]"):
        PoolConfig.from_dict({"embed_dim": 8, "width": 3})


def test_empty_pool():
    p = PromptPool(PoolConfig(embed_dim=D))
    with pytest.raises(ValueError, match="pool is empty"):
        p.select(torch.randn(2, D))


@pytest.mark.parametrize(
    "query,exc,match",
    [
        (torch.randn(4, 2 * D), ValueError, r"query must have shape \(B, 8\), got \(4, 16\)"),
        (torch.randn(D), ValueError, r"query must have shape \(B, 8\), got \(8,\)"),
        (torch.randn(2, 3, D), ValueError, r"got \(2, 3, 8\)"),
        (torch.randn(0, D), ValueError, "at least one row"),
        (torch.ones(2, D, dtype=torch.long), TypeError, "floating-point"),
        ([[0.0] * D], TypeError, "query must be a torch.Tensor"),
    ],
)
def test_bad_query_shape_and_type(pool, query, exc, match):
    with pytest.raises(exc, match=match):
        pool.select(query)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_query(pool, bad):
    q = torch.randn(3, D)
    q[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        pool.select(q)


def test_top_k_larger_than_selectable(pool):
    with pytest.raises(ValueError, match=r"k=6 is larger than the selectable pool \(5 prompts"):
        pool.select(torch.randn(1, D), k=6)
    with pytest.raises(ValueError, match=r"k=3 is larger than the selectable pool \(2 prompts in tasks \[1\]\)"):
        pool.select(torch.randn(1, D), k=3, tasks=[1])
    with pytest.raises(ValueError, match="k must be > 0"):
        pool.select(torch.randn(1, D), k=0)


def test_bad_tasks(pool):
    with pytest.raises(ValueError, match="task id 2 out of range: the pool has 2 tasks"):
        pool.select(torch.randn(1, D), tasks=[2])
    with pytest.raises(ValueError, match="at least one task"):
        pool.select(torch.randn(1, D), tasks=[])
    with pytest.raises(TypeError, match="tasks must be a sequence"):
        pool.select(torch.randn(1, D), tasks=1)


def test_bad_add_task(pool):
    with pytest.raises(ValueError, match="num_prompts must be > 0"):
        pool.add_task(0)
    with pytest.raises(TypeError, match="num_prompts must be an int"):
        pool.add_task(2.0)
    with pytest.raises(ValueError, match=r"keys must have shape \(2, 8\), got \(2, 4\)"):
        pool.add_task(2, keys=torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"prompts must have shape \(2, 2, 8\)"):
        pool.add_task(2, prompts=torch.randn(2, 8))
    with pytest.raises(ValueError, match="keys contains NaN"):
        pool.add_task(1, keys=torch.full((1, D), float("nan")))
    assert pool.task_sizes == [3, 2]  # failed calls changed nothing
    assert pool.trainable_parameters()  # and froze nothing


def test_bad_ids(pool):
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 5\)"):
        pool.lookup(torch.tensor([5]))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 5\)"):
        pool.task_of(torch.tensor([-1]))
    with pytest.raises(TypeError, match="integer tensor"):
        pool.lookup(torch.tensor([0.0]))


def test_key_matching_loss_type(pool):
    with pytest.raises(TypeError, match="selection must be a Selection"):
        pool.key_matching_loss(torch.zeros(2, 2))
