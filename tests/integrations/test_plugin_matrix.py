"""Every registered method x {PromptStrategy, Naive + plugin, Naive + plugin + ReplayPlugin}.

Each path trains two experiences of the tiny stream and evaluates the whole test stream
(its third experience never trained: classes never seen) after each, with Avalanche's
standard metrics at every level. Checked: every metric value is finite; no tensor the
optimizer does not hold moves while an experience trains; what experience 0 froze is
unchanged after experience 1; the backbone never changes; and PromptStrategy and Naive +
plugin (same seed, same batch order, the method's optimizer) give the same accuracy
matrix and the same trained tensors, bit for bit.
"""

from __future__ import annotations

import math

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import (
    accuracy_matrix_metrics,
    accuracy_metrics,
    bwt_metrics,
    forgetting_metrics,
    loss_metrics,
    timing_metrics,
)
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin

from cl_prompts.integrations.avalanche import PromptPoolPlugin, PromptStrategy, text_benchmark
from cl_prompts.methods import build_model, list_methods

METHODS = list_methods()
PATHS = ("strategy", "naive", "naive+replay")
LEVELS = dict(minibatch=True, epoch=True, epoch_running=True, experience=True, stream=True)
# statistics that observation (not the optimizer) updates while training, by design
STATISTICS = ("usage", "usage_at_task_start")
# tensors that grow by appending at the end of an experience: their earlier rows are final
FROZEN_GROWING = ("frozen", "frozen_prompts", "frozen_keys", "key_bank", "key_task",
                  "memory_features", "memory_targets")


def full_evaluator() -> EvaluationPlugin:
    """Avalanche's standard metrics at every level they exist."""
    return EvaluationPlugin(
        accuracy_metrics(**LEVELS), loss_metrics(**LEVELS),
        timing_metrics(minibatch=True, epoch=True, experience=True, stream=True),
        forgetting_metrics(experience=True, stream=True), bwt_metrics(experience=True, stream=True),
        accuracy_matrix_metrics(), loggers=[],
    )


def non_backbone_state(method) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in method.state_dict().items() if not k.startswith("backbone.")}


class UntrainedProbe(SupervisedPlugin):
    """Records, over each experience's training, the tensors the optimizer does not hold that moved."""

    def __init__(self, method):
        super().__init__()
        self.method, self.moved, self._before = method, [], None

    def before_training_epoch(self, strategy, **kw):
        if strategy.clock.train_exp_epochs == 0:  # after the method grew
            held = {id(p) for g in strategy.optimizer.param_groups for p in g["params"]}
            assert held == {id(p) for p in self.method.trainable_parameters()}
            self._before = {n: t.detach().clone() for n, t in self.method.state_dict(keep_vars=True).items()
                            if id(t) not in held and not n.endswith(STATISTICS)}

    def after_training_epoch(self, strategy, **kw):  # before the plugin's end_experience
        after = self.method.state_dict()
        if not getattr(self.method, "requires_training", True):  # statistics only: its
            self._before = {n: t for n, t in self._before.items() if n.startswith("backbone.")}  # sums move
        self.moved += [n for n, t in self._before.items() if not torch.equal(t, after[n])]


def run_path(path, name, settings, bench, backbone, seed=0):
    torch.manual_seed(seed)
    method = build_model(name, backbone, num_classes=6, **settings.get(name, {}))
    probe, evaluator = UntrainedProbe(method), full_evaluator()
    if path == "strategy":
        strategy = PromptStrategy(model=method, train_mb_size=8, eval_mb_size=16, evaluator=evaluator,
                                  plugins=[probe])
    else:
        plugins = [PromptPoolPlugin(method, optimizer="method"), probe]
        if path == "naive+replay":
            plugins.append(ReplayPlugin(mem_size=8))
        opt = torch.optim.SGD(method.parameters(), lr=0.1)  # replaced by the method's own
        strategy = Naive(model=method, optimizer=opt, train_mb_size=8, eval_mb_size=16,
                         evaluator=evaluator, plugins=plugins)
    states = []
    for exp in bench.train_stream[:2]:
        strategy.train(exp)
        strategy.eval(bench.test_stream)
        states.append(non_backbone_state(method))
    return method, evaluator, probe, states


def all_values(evaluator):
    for metric, (_, values) in evaluator.get_all_metrics().items():
        for v in values:
            yield metric, v


@pytest.fixture(scope="module")
def bench(text_backbone, toy_data):
    return text_benchmark(toy_data, text_backbone)


@pytest.mark.parametrize("name", METHODS)
def test_every_path_trains_with_finite_metrics_and_frozen_tensors(name, bench, text_backbone, tiny_settings):
    backbone_before = {k: v.clone() for k, v in text_backbone.state_dict().items()}
    results = {}
    for path in PATHS:
        method, evaluator, probe, states = run_path(path, name, tiny_settings, bench, text_backbone)
        results[path] = (evaluator, states)
        assert method.current_experience == 1 and not method.is_open, path
        values = list(all_values(evaluator))
        names = {m.split("/")[0] for m, _ in values}
        for wanted in ("Top1_Acc_MB", "Loss_MB", "Top1_Acc_Epoch", "Loss_Epoch", "Top1_Acc_Exp", "Loss_Exp",
                       "Top1_Acc_Stream", "Loss_Stream", "StreamForgetting", "StreamBWT", "Time_Epoch"):
            assert wanted in names, (path, wanted, sorted(names))
        for metric, v in values:
            finite = bool(torch.isfinite(v).all()) if isinstance(v, torch.Tensor) else math.isfinite(float(v))
            assert finite, (path, metric, v)
        assert probe.moved == [], (path, probe.moved)
        for k in states[0]:  # what experience 0 froze is still there, bit for bit
            if k.split(".")[-1] in FROZEN_GROWING:
                assert torch.equal(states[1][k][: len(states[0][k])], states[0][k]), (path, k)
    for k, v in text_backbone.state_dict().items():
        assert torch.equal(v, backbone_before[k]), k
    # the plugin in a plain Naive is the same algorithm as PromptStrategy: bit for bit
    (ev_s, states_s), (ev_n, states_n) = results["strategy"], results["naive"]
    matrix_s = ev_s.get_last_metrics()["EvalStream/Acc_Matrix"]
    assert torch.equal(matrix_s, ev_n.get_last_metrics()["EvalStream/Acc_Matrix"])
    for s_s, s_n in zip(states_s, states_n, strict=True):
        assert [k for k in s_s if not torch.equal(s_s[k], s_n[k])] == []
    assert float(matrix_s[1, :2].mean()) > 0  # not a vacuous comparison
