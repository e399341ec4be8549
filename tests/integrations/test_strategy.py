import csv

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive

from cl_prompts.integrations.avalanche import (
    PromptPoolPlugin,
    PromptStrategy,
    evaluate_accuracy,
    make_strategy,
    predict,
    results_evaluator,
    text_benchmark,
)


class Recorder(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.events = []

    def before_training_exp(self, strategy, **kw):
        self.events.append(("before_training_exp", strategy.experience.current_experience))

    def after_training_exp(self, strategy, **kw):
        self.events.append(("after_training_exp", strategy.experience.current_experience))


@pytest.fixture(scope="module")
def bench(text_backbone, toy_data):
    return text_benchmark(toy_data, text_backbone)


def test_plugin_callbacks_in_order(bench, text_backbone, standin_cls):
    method = standin_cls(text_backbone, 6)
    rec = Recorder()
    strategy = make_strategy(method, train_mb_size=8, plugins=[rec])
    for exp in bench.train_stream:
        strategy.train(exp)
    lifecycle = [c for c in method.calls if c[0] in ("begin", "end")]
    assert lifecycle == [
        ("begin", 0, [0, 1]), ("end", 0), ("begin", 1, [2, 3]), ("end", 1), ("begin", 2, [4, 5]), ("end", 2),
    ]
    # 16 samples per experience, batches of 8, one epoch: each batch observed, then forwarded once
    assert method.calls[:6] == [
        ("begin", 0, [0, 1]), ("observe", 8), ("forward", 8), ("observe", 8), ("forward", 8), ("end", 0)]
    assert rec.events == [(e, i) for i in range(3) for e in ("before_training_exp", "after_training_exp")]
    # the optimizer held exactly the trainable block of the last experience
    held = [p for g in strategy.optimizer.param_groups for p in g["params"]]
    assert len(held) == 1 and held[0] is method.blocks[2]


def test_plugin_in_plain_naive_trains_and_freezes(bench, text_backbone, standin_cls):
    method = standin_cls(text_backbone, 6)
    backbone_before = {k: v.clone() for k, v in text_backbone.state_dict().items()}
    opt = torch.optim.SGD(method.parameters(), lr=0.5)
    strategy = Naive(
        model=method, optimizer=opt, train_mb_size=8, train_epochs=2, evaluator=None,
        plugins=[PromptPoolPlugin(method)],
    )
    strategy.train(bench.train_stream[0])
    block0 = method.blocks[0].detach().clone()
    init0 = torch.randn(2, 32, generator=torch.Generator().manual_seed(0)) * 0.1
    assert not torch.allclose(block0, init0)  # trained
    assert not method.blocks[0].requires_grad  # frozen at the end of its experience
    strategy.train(bench.train_stream[1])
    assert torch.equal(method.blocks[0], block0)  # bit-identical after training a later experience
    assert not torch.allclose(method.blocks[1], torch.randn(2, 32, generator=torch.Generator().manual_seed(1)) * 0.1)
    assert strategy.optimizer is opt and opt.param_groups[0]["lr"] == 0.5  # the user's optimizer, refreshed
    assert [p for g in opt.param_groups for p in g["params"]] == [method.blocks[1]]
    for k, v in text_backbone.state_dict().items():
        assert torch.equal(v, backbone_before[k])


def test_prompt_strategy_learns_and_evaluates(bench, text_backbone, standin_cls, tmp_path):
    torch.manual_seed(0)
    method = standin_cls(text_backbone, 6, lr=0.5)
    strategy = make_strategy(method, train_mb_size=4, train_epochs=3, evaluator=results_evaluator(tmp_path))
    for exp in bench.train_stream:
        strategy.train(exp)
        results = strategy.eval(bench.test_stream)
    matrix = results["EvalStream/Acc_Matrix"]
    assert matrix.shape == (3, 3)
    # the avalanche accuracy on each experience equals the plain helper's
    for j, exp in enumerate(bench.test_stream):
        assert evaluate_accuracy(method, exp, batch_size=5) == pytest.approx(100 * float(matrix[2, j]), abs=1e-4)
    stream = evaluate_accuracy(method, torch.utils.data.ConcatDataset([e.dataset for e in bench.test_stream]))
    assert stream == pytest.approx(100 * results["Top1_Acc_Stream/eval_phase/test_stream/Task000"], abs=1e-4)
    # row i = after training experience i: classes of later experiences are never predicted
    assert all(float(matrix[i, j]) == 0.0 for i in range(3) for j in range(i + 1, 3)), matrix
    assert all(float(matrix[i, i]) > 0.0 for i in range(3)), matrix
    rows = list(csv.DictReader(open(tmp_path / "eval_results.csv")))
    assert len(rows) == 9 and {r["eval_exp"] for r in rows} == {"0", "1", "2"}
    assert "Top1_Acc_Stream" in (tmp_path / "log.txt").read_text()


def test_observe_only_method(bench, text_backbone, standin_cls):
    method = standin_cls(text_backbone, 6, requires_training=False)
    strategy = PromptStrategy(model=method, train_mb_size=16, train_epochs=3, evaluator=None)
    strategy.train(bench.train_stream[0])
    observed = [c for c in method.calls if c[0] == "observe"]
    assert observed == [("observe", 16)]  # one pass only, whatever train_epochs says
    assert method.sums[:2].abs().sum() > 0 and method.sums[2:].abs().sum() == 0
    # the same in a plain Naive with the plugin: no gradient, the same statistics
    fresh = standin_cls(text_backbone, 6, requires_training=False)
    opt = torch.optim.SGD(fresh.parameters(), lr=0.1)
    naive = Naive(model=fresh, optimizer=opt, train_mb_size=16, train_epochs=3, evaluator=None,
                  plugins=[PromptPoolPlugin(fresh)])
    naive.train(bench.train_stream[0])
    torch.testing.assert_close(fresh.sums, method.sums)  # float32 sums, another batch order
    assert [p for g in opt.param_groups for p in g["params"]] == []  # nothing to optimise
    assert float(naive.loss.sum()) == 0.0


def test_batch_size_invariance(bench, text_backbone, standin_cls):
    method = standin_cls(text_backbone, 6)
    strategy = make_strategy(method, train_mb_size=8, evaluator=None)
    for exp in bench.train_stream[:2]:
        strategy.train(exp)
    data = torch.utils.data.ConcatDataset([e.dataset for e in bench.test_stream])
    p1, t1 = predict(method, data, batch_size=1)
    p64, t64 = predict(method, data, batch_size=64)
    assert torch.equal(p1, p64) and torch.equal(t1, t64) and len(p1) == 24
    assert p1.max() <= 3  # classes never seen are never predicted


def test_bad_inputs(text_backbone, standin_cls, bench):
    method = standin_cls(text_backbone, 6)
    with pytest.raises(TypeError, match="ContinualMethod"):
        PromptPoolPlugin(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="optimizer"):
        PromptPoolPlugin(method, optimizer="adam")
    with pytest.raises(ValueError, match="train_mb_size"):
        make_strategy(method, train_mb_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_accuracy(method, bench.test_stream[0], batch_size=0)
    with pytest.raises(TypeError, match="experience_or_dataset"):
        evaluate_accuracy(method, 42)
    other = standin_cls(text_backbone, 6)
    naive = Naive(model=torch.nn.Linear(2, 2), optimizer=torch.optim.SGD(other.parameters(), lr=0.1),
                  evaluator=None, plugins=[PromptPoolPlugin(other)])
    with pytest.raises(ValueError, match="strategy's model"):
        naive.train(bench.train_stream[0])


def test_how_much_is_evaluated_does_not_change_training(bench, text_backbone, tiny_settings):
    """DataLoaders draw from the global RNG; eval is isolated so the trained weights agree."""
    from cl_prompts.methods import build_model

    states = []
    for evaluate_all in (False, True):
        torch.manual_seed(0)
        method = build_model("growing_pool", text_backbone, num_classes=6, **tiny_settings["growing_pool"])
        strategy = make_strategy(method, train_mb_size=4, evaluator=None)
        for e, exp in enumerate(bench.train_stream):
            strategy.train(exp)
            strategy.eval(bench.test_stream if evaluate_all else bench.test_stream[: e + 1])
        states.append({k: v.clone() for k, v in method.state_dict().items() if not k.startswith("backbone.")})
    assert sorted(states[0]) == sorted(states[1])
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0]), [
        k for k in states[0] if not torch.equal(states[0][k], states[1][k])]


def test_follows_avalanche_constructor_conventions(text_backbone, standin_cls):
    """Keyword-only arguments: Avalanche's positional-arguments warning never fires, so
    nothing needs silencing (it fires when the class is defined, hence the reload)."""
    import importlib
    import inspect
    import warnings

    import cl_prompts.integrations.strategy as module

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.reload(module)
        strategy = module.PromptStrategy(model=standin_cls(text_backbone, 6), evaluator=None)
    assert [str(w.message)[:60] for w in caught if "transitioning" in str(w.message)] == []
    params = inspect.signature(module.PromptStrategy.__init__).parameters
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for n, p in params.items() if n != "self")
    assert strategy.optimizer is None  # built by make_optimizer once the method has grown


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_prompt_strategy_trains_in_low_precision(bench, standin_cls, precision):
    from cl_prompts.backbones.testing import tiny_text_backbone

    backbone = tiny_text_backbone(max_length=16)  # its own: the strategy sets its precision
    method = standin_cls(backbone, 6, lr=0.5)
    strategy = make_strategy(method, train_mb_size=4, precision=precision, evaluator=None)
    assert backbone.precision == precision
    assert strategy.grad_scaler.is_enabled() == (precision == "fp16")
    strategy.train(bench.train_stream[0])
    block = method.blocks[0]
    assert block.dtype == torch.float32 and torch.isfinite(block).all()
    start = torch.randn(2, backbone.hidden_size, generator=torch.Generator().manual_seed(0)) * 0.1
    assert not torch.allclose(block, start), "the head block did not train"
    with pytest.raises(ValueError, match="precision must be one of"):
        make_strategy(standin_cls(backbone, 6), precision="double")
