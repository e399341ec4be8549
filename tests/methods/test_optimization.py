"""Gradient clipping, learning-rate schedules and presets of the method configs."""

from __future__ import annotations

import math

import pytest
import torch

from cl_prompts.methods import get_method_class
from cl_prompts.methods.config import make_config
from cl_prompts.methods.l2p import L2PConfig
from cl_prompts.methods.optimization import clip_gradients, make_lr_schedule, optimizer_step


def _params_with_grads(*grads: list[float]) -> list[torch.nn.Parameter]:
    params = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros(len(g)))
        p.grad = torch.tensor(g)
        params.append(p)
    return params


def _total_norm(params) -> float:
    return float(torch.cat([p.grad.reshape(-1) for p in params]).norm())


def test_clipping_scales_the_total_norm_down_to_grad_clip_and_keeps_directions():
    params = _params_with_grads([3.0, 0.0], [0.0, 4.0])  # total norm 5
    opt = torch.optim.SGD(params, lr=1.0)
    clip_gradients(params, L2PConfig(grad_clip=1.0), opt)
    assert _total_norm(params) == pytest.approx(1.0, rel=1e-5)
    assert torch.allclose(params[0].grad, torch.tensor([0.6, 0.0]), atol=1e-5)
    small = _params_with_grads([0.3, 0.4])  # norm 0.5 < 1: untouched
    clip_gradients(small, L2PConfig(grad_clip=1.0), opt)
    assert torch.equal(small[0].grad, torch.tensor([0.3, 0.4]))
    unclipped = _params_with_grads([30.0, 40.0])
    clip_gradients(unclipped, L2PConfig(grad_clip=None), opt)
    assert _total_norm(unclipped) == pytest.approx(50.0)


def test_clipping_under_a_loss_scaler_uses_true_gradient_units():
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([p], lr=1.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, enabled=True)
    scaler.scale((p * torch.tensor([3.0, 4.0])).sum()).backward()  # true gradient (3, 4), norm 5
    optimizer_step(opt, scaler, [p], L2PConfig(grad_clip=1.0))
    # unscaled, clipped to norm 1, then one SGD step of lr 1: p moved by exactly (0.6, 0.8)
    assert torch.allclose(p.detach(), torch.tensor([0.4, 0.2]), atol=1e-5)


def test_cosine_schedule_decays_each_group_from_its_own_lr_to_zero():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert make_lr_schedule(opt, L2PConfig(), 10) is None  # constant
    assert make_lr_schedule(None, L2PConfig(lr_schedule="cosine"), 10) is None  # nothing trains
    schedule = make_lr_schedule(opt, L2PConfig(lr_schedule="cosine"), 4)
    seen = []
    for _ in range(4):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        schedule.step()
    for k, (lr_a, lr_b) in enumerate(seen):
        factor = 0.5 * (1 + math.cos(math.pi * k / 4))
        assert lr_a == pytest.approx(0.1 * factor) and lr_b == pytest.approx(0.5 * factor)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.0, 0.0])
    with pytest.raises(ValueError, match="at least one step"):
        make_lr_schedule(opt, L2PConfig(lr_schedule="cosine"), 0)


@pytest.mark.parametrize(("field", "value", "match"), [
    ("grad_clip", 0.0, "grad_clip"), ("grad_clip", -1.0, "grad_clip"), ("lr_schedule", "linear", "lr_schedule"),
])
def test_bad_clipping_and_schedule_options_are_refused(field, value, match):
    with pytest.raises((TypeError, ValueError), match=match):
        L2PConfig(**{field: value})


@pytest.mark.parametrize("name", ["l2p", "dualprompt", "coda_prompt"])
def test_paper_preset_sets_only_real_options_and_overrides_go_on_top(name):
    config_class = get_method_class(name).config_class
    preset = config_class.PRESETS["paper"]
    paper = make_config(config_class, name, {"preset": "paper"})
    assert {k: getattr(paper, k) for k in preset} == preset
    assert make_config(config_class, name, {"preset": "paper", "lr": 0.123}).lr == 0.123
    assert config_class.from_preset("paper", lr=0.123) == make_config(config_class, name, {"preset": "paper", "lr": 0.123})


def test_paper_presets_hold_the_published_optimisation():
    l2p = L2PConfig.from_preset("paper")
    assert (l2p.lr, l2p.grad_clip, l2p.lr_schedule, l2p.top_k, l2p.pool_size) == (0.03, 1.0, "constant", 5, 10)
    dual = make_config(get_method_class("dualprompt").config_class, "dualprompt", {"preset": "paper"})
    assert (dual.lr, dual.grad_clip, dual.e_length, dual.key_init) == (0.005, 1.0, 20, "as_prompts")
    coda = make_config(get_method_class("coda_prompt").config_class, "coda_prompt", {"preset": "paper"})
    assert (coda.lr, coda.lr_schedule, coda.grad_clip) == (1e-3, "cosine", None)


def test_unknown_preset_or_a_method_without_presets_is_refused_by_name():
    with pytest.raises(ValueError, match="no preset 'papr'.*'paper'"):
        make_config(L2PConfig, "l2p", {"preset": "papr"})
    ncm = get_method_class("ncm").config_class
    with pytest.raises(ValueError, match="no preset 'paper'"):
        make_config(ncm, "ncm", {"preset": "paper"})
    with pytest.raises(TypeError, match=r"presets \(--set preset=NAME\): \['paper'\]"):
        make_config(L2PConfig, "l2p", {"presets": "paper"})


def test_preset_and_clipping_from_the_command_line_and_listed_in_the_options():
    from cl_prompts.cli import parse_set
    from cl_prompts.methods.registry import describe_options

    options = parse_set(["preset=paper", "grad_clip=null", "lr_schedule=cosine"])
    config = make_config(L2PConfig, "l2p", options)
    assert (config.grad_clip, config.lr_schedule, config.lr) == (None, "cosine", 0.03)
    text = describe_options("l2p")
    assert "preset = 'paper'" in text and "grad_clip = 1.0" in text and "lr_schedule = 'constant'" in text
