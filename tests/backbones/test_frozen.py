"""The backbone never changes: no gradients, no optimizer moves, dropout stays off."""

import torch
from torch import nn

from .conftest import make_inputs


def snapshot(bb):
    return {k: v.detach().clone() for k, v in bb.model.state_dict().items()}


def test_gradients_reach_the_prompts_only(backbone):
    x = make_inputs(backbone)
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(3, 2, 32, generator=gen).requires_grad_()
    k = torch.randn(3, 2, 2, 32, generator=gen).requires_grad_()
    w = torch.randn(32, generator=gen)  # a plain .sum() of a LayerNorm output has ~zero gradient
    out = backbone(x, input_prompts=p, prefix_prompts={1: k})
    ((out.pooled + out.prompt_pooled) @ w).sum().backward()
    assert p.grad is not None and p.grad.abs().sum() > 0
    assert k.grad is not None and k.grad.abs().sum() > 0
    assert all(not q.requires_grad and q.grad is None for q in backbone.parameters())


def test_weights_bit_identical_after_optimizer_steps(backbone):
    before = snapshot(backbone)
    x = make_inputs(backbone)
    gen = torch.Generator().manual_seed(0)
    p = nn.Parameter(torch.randn(1, 2, 32, generator=gen))
    k = nn.Parameter(torch.randn(1, 2, 2, 32, generator=gen))
    opt = torch.optim.AdamW([p, k], lr=0.1, weight_decay=0.1)
    p0 = p.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        out = backbone(x, input_prompts=p, prefix_prompts={0: k})
        out.pooled.pow(2).mean().backward()
        opt.step()
    after = snapshot(backbone)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert not torch.equal(p.detach(), p0)  # the prompts did move


def test_backbone_stays_in_eval_mode_under_a_training_parent(backbone):
    parent = nn.ModuleDict({"backbone": backbone, "head": nn.Linear(32, 2)})
    parent.train()
    assert parent["head"].training and backbone.training
    assert not any(m.training for m in backbone.model.modules())
    x = make_inputs(backbone)
    # tiny configs have dropout 0.1: two passes agree only with dropout off
    assert torch.equal(backbone(x).pooled, backbone(x).pooled)
    parent.eval()
    assert not backbone.training


def test_query_features_carry_no_graph(backbone):
    q = backbone.query_features(make_inputs(backbone))
    assert q.shape == (3, 32) and not q.requires_grad
