"""Options of the paper methods that the official code has: JAX key initialisation, a separate
head learning rate, DualPrompt's copy of the previous E-prompt."""

from __future__ import annotations

import pytest
import torch

from cl_prompts.pool import PoolConfig, PromptPool

HEAD_LR_METHODS = ["l2p", "dualprompt", "coda_prompt", "prompt_tuning"]


@pytest.mark.parametrize("name", ["l2p", "dualprompt"])
def test_jax_uniform_keys_start_in_zero_to_a_hundredth_and_prompts_do_not(backbone, stream, h, name):
    model = h.build(name, backbone, key_init="jax_uniform")
    model.begin_experience(0, stream[0][0])
    keys, prompts = model.pool.keys.detach(), model.pool.prompts.detach()
    assert keys.min() >= 0 and keys.max() < 0.01, (keys.min(), keys.max())
    assert keys.std() > 1e-3  # drawn, not constant
    assert prompts.abs().max() > 0.5  # the prompts keep U(-1, 1)
    like_prompts = h.build(name, backbone, key_init="as_prompts")
    like_prompts.begin_experience(0, stream[0][0])
    assert like_prompts.pool.keys.detach().min() < -0.5


def test_pool_key_init_is_checked_and_old_configs_read_back():
    with pytest.raises(ValueError, match="key_init"):
        PoolConfig(embed_dim=8, key_init="jax")
    old = PoolConfig(embed_dim=8).to_dict()
    del old["key_init"]  # a config saved before the option existed
    assert PoolConfig.from_dict(old).key_init == "as_prompts"
    pool = PromptPool(PoolConfig(embed_dim=8, prompt_length=2, key_init="jax_uniform"))
    given = torch.full((3, 8), -2.0)
    pool.add_task(3, keys=given)
    assert torch.equal(pool.keys.detach(), given)  # keys passed in are not re-drawn


def test_dualprompt_copy_previous_prompt_starts_from_the_last_e_prompt(backbone, stream, h):
    model = h.build("dualprompt", backbone, copy_previous_prompt=True)
    h.run_experience(model, 0, *stream[0], steps=3)
    trained = model.pool.frozen_prompts[0].clone()
    model.begin_experience(1, stream[1][0])
    assert torch.equal(model.pool.prompts.detach()[0], trained)
    assert not torch.equal(model.pool.keys.detach()[0], model.pool.frozen_keys[0])  # key: fresh
    model.train()
    opt = model.make_optimizer()
    for _ in range(3):
        opt.zero_grad()
        model.training_loss(stream[1][1], stream[1][2]).backward()
        opt.step()
    assert not torch.equal(model.pool.prompts.detach()[0], trained)  # the copy trains
    assert torch.equal(model.pool.frozen_prompts[0], trained)  # the original stays frozen

    plain = h.build("dualprompt", backbone, copy_previous_prompt=False)
    h.run_experience(plain, 0, *stream[0], steps=3)
    plain.begin_experience(1, stream[1][0])
    assert not torch.equal(plain.pool.prompts.detach()[0], plain.pool.frozen_prompts[0])


@pytest.mark.parametrize("name", [*HEAD_LR_METHODS, "finetune"])
def test_head_lr_puts_the_head_in_its_own_optimizer_group(backbone, stream, h, name):
    model = h.build(name, backbone, head_lr=0.125)
    model.begin_experience(0, stream[0][0])
    opt = model.make_optimizer()
    head = {id(p) for p in model.head.trainable_parameters()}
    lrs = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert head and all(lrs[i] == 0.125 for i in head)
    others = [lr for i, lr in lrs.items() if i not in head]
    assert others and all(lr == model.config.lr for lr in others)
    assert set(lrs) == {id(p) for p in model.trainable_parameters()}


@pytest.mark.parametrize("name", HEAD_LR_METHODS)
def test_without_head_lr_one_group_holds_everything(backbone, stream, h, name):
    single = h.build(name, backbone, head_lr=None)
    single.begin_experience(0, stream[0][0])
    assert len(single.make_optimizer().param_groups) == 1


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "fast"])
def test_head_lr_refuses_what_is_not_a_positive_number(backbone, h, bad):
    with pytest.raises((ValueError, TypeError), match="head_lr"):
        h.build("l2p", backbone, head_lr=bad)
