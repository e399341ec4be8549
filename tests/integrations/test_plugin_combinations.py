"""PromptPoolPlugin with Avalanche's EWCPlugin and LwFPlugin: each method either trains as the
combination it claims to be, or is refused at before_training, before anything trained."""

from __future__ import annotations

import math

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from avalanche.training.plugins import EWCPlugin, LwFPlugin, ReplayPlugin

from cl_prompts.integrations.avalanche import PromptPoolPlugin, PromptStrategy, text_benchmark
from cl_prompts.methods import build_model, list_methods

METHODS = list_methods()


@pytest.fixture(scope="module")
def bench(text_backbone, toy_data):
    return text_benchmark(toy_data, text_backbone)


class LossProbe(SupervisedPlugin):
    """The loss the strategy back-propagates, per iteration (placed last)."""

    def __init__(self):
        super().__init__()
        self.losses = []

    def before_backward(self, strategy, **kw):
        self.losses.append(float(strategy.loss.detach().sum()))


def naive(method, plugins, **kw):
    return Naive(model=method, optimizer=torch.optim.SGD(method.parameters(), lr=0.1), train_mb_size=8,
                 evaluator=None, plugins=[*plugins, LossProbe()], **kw)


def losses_of(strategy) -> list[float]:
    return next(p for p in strategy.plugins if isinstance(p, LossProbe)).losses


def build(name, backbone, settings):
    torch.manual_seed(0)
    return build_model(name, backbone, num_classes=6, **settings.get(name, {}))


def expected_refusal(method, other) -> str | None:
    if not method.requires_training:
        return "only observes statistics"
    if other is EWCPlugin and method.renews_parameters:
        return "matches parameters by name"
    return None


@pytest.mark.parametrize("other", [EWCPlugin, LwFPlugin], ids=["ewc", "lwf"])
@pytest.mark.parametrize("name", METHODS)
def test_regulariser_trains_or_is_refused_up_front(name, other, bench, text_backbone, tiny_settings):
    method = build(name, backbone=text_backbone, settings=tiny_settings)
    mine = PromptPoolPlugin(method, optimizer="method")
    plugins = [other(ewc_lambda=10.0), mine] if other is EWCPlugin else [mine, other()]
    strategy = naive(method, plugins)
    refusal = expected_refusal(method, other)
    if refusal is not None:
        with pytest.raises(ValueError, match=refusal) as err:
            strategy.train(bench.train_stream[0])
        assert method.current_experience == -1  # refused before anything began
        assert "use" in str(err.value)  # and it says what to use instead
        return
    for exp in bench.train_stream[:2]:
        strategy.train(exp)
        metrics = strategy.eval(bench.test_stream[:2])
    losses = losses_of(strategy)
    assert losses and all(math.isfinite(v) for v in losses)
    assert all(math.isfinite(float(v)) for v in metrics.values() if not isinstance(v, torch.Tensor))
    assert not method.is_open and method.current_experience == 1


def test_wrong_order_is_refused(bench, text_backbone, tiny_settings):
    for plugins, message in (
        (lambda m: [PromptPoolPlugin(m), EWCPlugin(ewc_lambda=1.0)], "EWCPlugin must come before"),
        (lambda m: [LwFPlugin(), PromptPoolPlugin(m)], "LwFPlugin must come after"),
        (lambda m: [PromptPoolPlugin(m), PromptPoolPlugin(m)], "two PromptPoolPlugins"),
    ):
        method = build("l2p", text_backbone, tiny_settings)
        with pytest.raises(ValueError, match=message):
            naive(method, plugins(method)).train(bench.train_stream[0])
        assert method.current_experience == -1
    # PromptStrategy puts its plugin after the user's EWCPlugin by itself
    method = build("l2p", text_backbone, tiny_settings)
    strategy = PromptStrategy(model=method, train_mb_size=8, evaluator=None, plugins=[EWCPlugin(ewc_lambda=1.0)])
    strategy.train(bench.train_stream[0])
    assert isinstance(strategy.plugins[0], EWCPlugin) and strategy.plugins[1] is strategy.pool_plugin


def _l2p_after_two(bench, text_backbone, tiny_settings, extra):
    method = build("l2p", text_backbone, tiny_settings)
    plugins = [PromptPoolPlugin(method, optimizer="method")]
    plugins = [*extra[:1], *plugins] if extra and isinstance(extra[0], EWCPlugin) else [*plugins, *extra]
    strategy = naive(method, plugins)
    strategy.train(bench.train_stream[0])
    pool0 = method.pool.prompts.detach().clone()
    strategy.train(bench.train_stream[1])
    return method, strategy, (method.pool.prompts.detach() - pool0).norm().item()


def test_ewc_and_lwf_act_on_l2p_shared_pool(bench, text_backbone, tiny_settings):
    """l2p's pool keeps training in every experience: EWC holds it back, LwF distils through it."""
    _, _, free = _l2p_after_two(bench, text_backbone, tiny_settings, [])
    ewc = EWCPlugin(ewc_lambda=1e6)
    _, _, held = _l2p_after_two(bench, text_backbone, tiny_settings, [ewc])
    assert float(ewc.importances[0]["pool.prompts"].data.abs().sum()) > 0  # computed while it trained
    assert held < 0.5 * free, (held, free)
    lwf = LwFPlugin(alpha=1.0)
    method, _, _ = _l2p_after_two(bench, text_backbone, tiny_settings, [lwf])
    teacher = lwf.lwf.prev_model
    assert teacher is not method and not teacher.is_open  # copied once the experience was frozen
    x = next(iter(torch.utils.data.DataLoader(bench.train_stream[1].dataset, batch_size=8)))[0]
    method.train()
    method.begin_experience(2, [4, 5])  # an open experience: train-mode logits, as LwF sees them
    penalty = float(lwf.lwf._lwf_penalty(method(x), x, method).detach())
    assert penalty > 0 and math.isfinite(penalty)


@pytest.mark.parametrize("name", ["ncm", "growing_pool", "l2p"])
def test_replayed_samples_are_trained_not_observed(name, bench, text_backbone, tiny_settings):
    """Statistics of a finished experience are final: replayed samples never feed them again."""
    method = build(name, text_backbone, tiny_settings)
    observed = []
    observe = method.observe
    method.observe = lambda x, y: (observed.append(y.clone()), observe(x, y))[1]
    strategy = naive(method, [PromptPoolPlugin(method), ReplayPlugin(mem_size=16)])
    for e, exp in enumerate(bench.train_stream[:2]):
        strategy.train(exp)
        seen = torch.cat(observed)
        assert sorted(set(seen.tolist())) == [2 * e, 2 * e + 1]  # only the open experience's classes
        assert len(seen) == 16  # each of its samples once (one epoch)
        observed.clear()
    if name == "ncm":
        assert method.class_counts[:4].tolist() == [8.0] * 4  # experience 0's means untouched by replay
    assert all(math.isfinite(v) for v in losses_of(strategy))


def test_avalanche_distributed_training_is_refused(bench, text_backbone, tiny_settings, monkeypatch):
    from cl_prompts.integrations import plugin

    monkeypatch.setattr(plugin, "distributed_world_size", lambda: 2)  # as inside a 2-process group
    for make in (lambda m: naive(m, [PromptPoolPlugin(m)]),
                 lambda m: PromptStrategy(model=m, train_mb_size=8, evaluator=None)):
        method = build("growing_pool", text_backbone, tiny_settings)
        with pytest.raises(RuntimeError, match="does not support Avalanche's distributed training") as err:
            make(method).train(bench.train_stream[0])
        assert "torchrun --nproc-per-node N -m cl_prompts.cli run" in str(err.value)
        assert method.current_experience == -1  # refused before anything began
