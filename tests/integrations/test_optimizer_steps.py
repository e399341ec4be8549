"""The method's gradient clipping and lr schedule inside Avalanche: PromptStrategy, and
PromptPoolPlugin in a plain Naive strategy."""

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive

from cl_prompts.integrations.avalanche import PromptPoolPlugin, make_strategy, text_benchmark
from cl_prompts.methods import build_model

OPTIONS = {"grad_clip": 1e-3, "lr_schedule": "cosine", "optimizer": "sgd"}


@pytest.fixture(scope="module")
def bench(text_backbone, toy_data):
    return text_benchmark(toy_data, text_backbone)


def _check(clipped, schedules, experiences: int) -> None:
    # 16 training samples per experience, minibatch 8, one epoch: 2 steps each
    assert len(clipped) == 2 * experiences
    assert all(m == 1e-3 and before > m and after <= m * (1 + 1e-4) for m, before, after in clipped)
    assert [steps for _, steps in schedules] == [2] * experiences
    assert all(s.last_epoch == 2 and s.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12) for s, _ in schedules)


def test_prompt_strategy_clips_and_schedules_with_the_methods_settings(bench, text_backbone, tiny_settings, optimizer_spies):
    torch.manual_seed(0)
    method = build_model("l2p", text_backbone, num_classes=6, **{**tiny_settings["l2p"], **OPTIONS})
    strategy = make_strategy(method, train_mb_size=8, evaluator=None)
    for exp in bench.train_stream[:2]:
        strategy.train(exp)
    _check(*optimizer_spies, experiences=2)


def test_plugin_with_the_methods_optimizer_clips_and_schedules_in_naive(bench, text_backbone, tiny_settings, optimizer_spies):
    torch.manual_seed(0)
    method = build_model("l2p", text_backbone, num_classes=6, **{**tiny_settings["l2p"], **OPTIONS})
    strategy = Naive(model=method, optimizer=torch.optim.SGD(method.parameters(), lr=0.1),
                     criterion=torch.nn.CrossEntropyLoss(), train_mb_size=8,
                     plugins=[PromptPoolPlugin(method, optimizer="method")])
    for exp in bench.train_stream[:2]:
        strategy.train(exp)
    _check(*optimizer_spies, experiences=2)


def test_plugin_keeping_the_strategys_optimizer_warns_that_clipping_is_not_applied(
        bench, text_backbone, tiny_settings, optimizer_spies):
    torch.manual_seed(0)
    method = build_model("l2p", text_backbone, num_classes=6, **{**tiny_settings["l2p"], **OPTIONS})
    with pytest.warns(UserWarning, match="grad_clip and lr_schedule are not applied"):
        plugin = PromptPoolPlugin(method)
    strategy = Naive(model=method, optimizer=torch.optim.SGD(method.parameters(), lr=0.1),
                     criterion=torch.nn.CrossEntropyLoss(), train_mb_size=8, plugins=[plugin])
    strategy.train(bench.train_stream[0])
    clipped, schedules = optimizer_spies
    assert clipped == [] and schedules == []


def test_a_head_lr_group_survives_avalanches_optimizer_update_between_experiences(bench, text_backbone, tiny_settings):
    """Avalanche's update_optimizer cannot place new tensors when their parent module spans
    several groups; the plugin must still train every experience with the head's own lr."""
    torch.manual_seed(0)
    method = build_model("l2p", text_backbone, num_classes=6, **{**tiny_settings["l2p"], "head_lr": 0.02})
    seen = []

    class LrProbe(SupervisedPlugin):
        def before_update(self, strategy, **kw):
            seen.append((method.current_experience, sorted(g["lr"] for g in strategy.optimizer.param_groups)))

    strategy = Naive(model=method, optimizer=torch.optim.SGD(method.parameters(), lr=0.1),
                     criterion=torch.nn.CrossEntropyLoss(), train_mb_size=8, evaluator=None,
                     plugins=[PromptPoolPlugin(method, optimizer="method"), LrProbe()])
    for exp in bench.train_stream:
        strategy.train(exp)
    assert sorted({e for e, _ in seen}) == [0, 1, 2]
    assert all(lrs == [0.02, 0.05] for _, lrs in seen)  # the head's group and the prompts' group
