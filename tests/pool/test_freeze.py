"""Frozen segments stay bit-identical under a real optimizer (Adam, momentum, weight decay)."""

from __future__ import annotations

import torch

from cl_prompts.pool import PoolConfig, PromptPool

D, L = 16, 2


def train_steps(pool: PromptPool, opt: torch.optim.Optimizer, steps: int, tasks=None) -> None:
    g = torch.Generator().manual_seed(11)
    for _ in range(steps):
        q = torch.randn(8, D, generator=g)
        sel = pool.select(q, tasks=tasks)
        loss = pool.key_matching_loss(sel) + sel.prompts.square().mean()
        opt.zero_grad(set_to_none=False)  # zero tensors, not None: the harder case
        loss.backward()
        opt.step()


def test_add_task_freezes_earlier_segments():
    pool = PromptPool(PoolConfig(embed_dim=D, prompt_length=L, top_k=2))
    ids0 = pool.add_task(4)
    ids1 = pool.add_task(3)
    assert ids0.tolist() == [0, 1, 2, 3] and ids1.tolist() == [4, 5, 6]
    assert pool.num_frozen == 4 and pool.current_task == 1 and pool.num_tasks == 2
    assert [p.shape for p in pool.trainable_parameters()] == [(3, L, D), (3, D)]
    assert [n for n, _ in pool.named_parameters()] == ["prompts", "keys"]
    pool.freeze()
    assert pool.trainable_parameters() == [] and pool.num_frozen == 7
    assert list(pool.parameters()) == []


def test_old_task_bit_identical_after_adam_on_later_task():
    torch.manual_seed(0)
    pool = PromptPool(PoolConfig(embed_dim=D, prompt_length=L, top_k=2))
    pool.add_task(5)
    pool.train()
    # task 1 trains with an optimizer that then *stays alive* holding task-1 params
    stale = torch.optim.Adam(pool.trainable_parameters(), lr=0.1, weight_decay=0.5)
    train_steps(pool, stale, 5)
    task1_p = pool.prompts.detach().clone()
    task1_k = pool.keys.detach().clone()

    pool.add_task(4)
    fresh = torch.optim.Adam(pool.trainable_parameters(), lr=0.1, weight_decay=0.5)
    new_before = pool.keys.detach().clone()
    for _ in range(5):
        train_steps(pool, fresh, 1)  # unrestricted: frozen prompts are selected too
        stale.step()  # Adam state + weight decay on the old Parameter objects
    assert torch.equal(pool.frozen_prompts, task1_p)
    assert torch.equal(pool.frozen_keys, task1_k)
    assert not torch.equal(pool.keys.detach(), new_before), "the current task must train"
    # what the pool returns for the old ids is the frozen value
    prompts, keys = pool.lookup(torch.arange(5))
    assert torch.equal(prompts, task1_p) and torch.equal(keys, task1_k)


def test_adam_over_module_parameters_never_sees_frozen_tensors():
    pool = PromptPool(PoolConfig(embed_dim=D, prompt_length=L, top_k=2))
    pool.add_task(3)
    pool.add_task(3)
    frozen = pool.frozen_keys.clone()
    opt = torch.optim.AdamW(pool.parameters(), lr=0.5, weight_decay=1.0)
    held = {id(p) for group in opt.param_groups for p in group["params"]}
    assert held == {id(pool.prompts), id(pool.keys)}
    train_steps(pool, opt, 3)
    assert torch.equal(pool.frozen_keys, frozen)


def test_frozen_index_tracks_frozen_keys_after_load_state_dict():
    pool = PromptPool(PoolConfig(embed_dim=D, prompt_length=L, top_k=1))
    pool.add_task(4)
    pool.freeze()
    state = {k: v.clone() for k, v in pool.state_dict().items()}
    q = torch.randn(1, D)
    state["frozen_keys"][3] = q[0]  # make id 3 the best match
    pool.load_state_dict(state)
    assert pool.select(q).ids.item() == 3
