"""Avalanche's metrics give the right numbers with the plugin, and its loggers write finite ones."""

from __future__ import annotations

import csv
import math

import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from cl_prompts.integrations.avalanche import (
    PromptPoolPlugin,
    evaluate_accuracy,
    make_strategy,
    predict,
    results_evaluator,
    text_benchmark,
)
from cl_prompts.integrations.plugin import UNSEEN_LOGIT_MARGIN
from cl_prompts.methods import build_model

EXP0 = "eval_phase/test_stream/Task000/Exp000"
EXP1 = "eval_phase/test_stream/Task000/Exp001"


@pytest.fixture(scope="module")
def bench(text_backbone, toy_data):
    return text_benchmark(toy_data, text_backbone)


class TrainProbe(SupervisedPlugin):
    """Loss, batch size and correct predictions of each training iteration, as metrics see them."""

    def __init__(self):
        super().__init__()
        self.rows = []

    def after_training_iteration(self, strategy, **kw):
        correct = int((strategy.mb_output.argmax(1) == strategy.mb_y).sum())
        self.rows.append((float(strategy.loss.detach().sum()), len(strategy.mb_y), correct))


@pytest.mark.parametrize("name", ["l2p", "ncm"])
def test_metric_values_are_the_right_numbers(name, bench, text_backbone, tiny_settings):
    torch.manual_seed(0)
    method = build_model(name, text_backbone, num_classes=6, **tiny_settings[name])
    probe = TrainProbe()
    evaluator = EvaluationPlugin(accuracy_metrics(epoch=True, experience=True, stream=True),
                                 loss_metrics(epoch=True, experience=True, stream=True), loggers=[])
    strategy = Naive(model=method, optimizer=torch.optim.Adam(method.parameters(), lr=0.05), train_mb_size=5,
                     evaluator=evaluator, plugins=[PromptPoolPlugin(method), probe])
    train = strategy.train(bench.train_stream[0])
    # training: the epoch's loss and accuracy are the per-sample means of what was back-propagated
    n = sum(b for _, b, _ in probe.rows)
    assert n == 16
    assert train["Loss_Epoch/train_phase/train_stream/Task000"] == pytest.approx(
        sum(v * b for v, b, _ in probe.rows) / n, rel=1e-5)
    assert train["Top1_Acc_Epoch/train_phase/train_stream/Task000"] == pytest.approx(
        sum(c for _, _, c in probe.rows) / n)
    if not method.requires_training:
        assert all(v == 0.0 for v, _, _ in probe.rows)  # nothing is optimised: a zero loss
    got = strategy.eval(bench.test_stream[:2])
    # evaluation: accuracy as the plain helper counts it; loss = cross-entropy of the logits
    assert 100 * got[f"Top1_Acc_Exp/{EXP0}"] == pytest.approx(evaluate_accuracy(method, bench.test_stream[0]))
    data = bench.test_stream[0].dataset.eval()
    x, y, _ = next(iter(torch.utils.data.DataLoader(data, batch_size=len(data))))
    method.eval()
    with torch.no_grad():
        ce = F.cross_entropy(method(x), y).item()
    assert math.isfinite(ce) and got[f"Loss_Exp/{EXP0}"] == pytest.approx(ce, rel=1e-5)
    # classes never seen: -inf logits, yet a finite loss, the unseen margin above the seen ones
    assert not torch.isfinite(method(x)[:, 2:]).any()
    assert UNSEEN_LOGIT_MARGIN <= got[f"Loss_Exp/{EXP1}"] < 10 * UNSEEN_LOGIT_MARGIN
    assert got[f"Top1_Acc_Exp/{EXP1}"] == 0.0
    preds, _ = predict(method, bench.test_stream[1])
    assert int(preds.max()) <= 1  # the finite floor changed no prediction


@pytest.mark.parametrize("path", ["strategy", "naive"])
def test_loggers_write_finite_values(path, bench, text_backbone, tiny_settings, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    method = build_model("growing_pool", text_backbone, num_classes=6, **tiny_settings["growing_pool"])
    evaluator = results_evaluator(tmp_path, tensorboard=True)
    if path == "strategy":
        strategy = make_strategy(method, train_mb_size=8, evaluator=evaluator)
    else:
        strategy = Naive(model=method, optimizer=torch.optim.Adam(method.parameters(), lr=0.05), train_mb_size=8,
                         evaluator=evaluator, plugins=[PromptPoolPlugin(method)])
    for exp in bench.train_stream[:2]:
        strategy.train(exp)
        strategy.eval(bench.test_stream)
    rows = list(csv.DictReader(open(tmp_path / "eval_results.csv")))
    assert len(rows) == 6  # 2 evaluations x 3 test experiences
    for row in rows:
        assert math.isfinite(float(row["eval_accuracy"])) and math.isfinite(float(row["eval_loss"])), row
    log = (tmp_path / "log.txt").read_text()
    assert "Loss_Stream" in log and "inf" not in log.replace("Info", "")
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    tags = events.Tags()["scalars"]
    assert any(t.startswith("Loss_Exp") for t in tags) and any(t.startswith("Top1_Acc_Stream") for t in tags)
    for tag in tags:
        assert all(math.isfinite(e.value) for e in events.Scalars(tag)), tag
