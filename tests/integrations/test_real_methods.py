"""The registered methods inside PromptStrategy / a plain Naive strategy, on a tiny backbone."""

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive

from cl_prompts.integrations.avalanche import (
    PromptPoolPlugin,
    make_strategy,
    predict,
    text_benchmark,
)
from cl_prompts.methods import build_model

SMALL = ("l2p", "growing_pool", "ncm")


@pytest.fixture(scope="module")
def bench(text_backbone, toy_data):
    return text_benchmark(toy_data, text_backbone)


@pytest.mark.parametrize("name", SMALL)
def test_batch_size_invariance_real_methods(name, bench, text_backbone, tiny_settings):
    torch.manual_seed(0)
    method = build_model(name, text_backbone, num_classes=6, **tiny_settings[name])
    strategy = make_strategy(method, train_mb_size=8, evaluator=None)
    for exp in bench.train_stream[:2]:
        strategy.train(exp)
    data = torch.utils.data.ConcatDataset([e.dataset for e in bench.test_stream])
    p1, _ = predict(method, data, batch_size=1)
    p64, _ = predict(method, data, batch_size=64)
    assert torch.equal(p1, p64)  # per-sample selection: no dependence on batch size or batch mates
    assert int(p1.max()) <= 3  # classes of the untrained experience are never predicted
    # the same samples in another order and batch company give the same predictions
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(1))
    shuffled = torch.utils.data.Subset(data, perm.tolist())
    ps, _ = predict(method, shuffled, batch_size=7)
    assert torch.equal(ps, p1[perm])


class OptimizerProbe(SupervisedPlugin):
    """Records, at each training iteration, what the optimizer holds and what is trainable."""

    def __init__(self, method):
        super().__init__()
        self.method, self.seen = method, []

    def before_training_iteration(self, strategy, **kw):
        held = [p for g in strategy.optimizer.param_groups for p in g["params"]]
        self.seen.append(({id(p) for p in held}, {id(p) for p in self.method.trainable_parameters()}))


def test_l2p_in_plain_naive_trains_and_freezes(bench, text_backbone, tiny_settings):
    torch.manual_seed(0)
    method = build_model("l2p", text_backbone, num_classes=6, **tiny_settings["l2p"])
    opt = torch.optim.Adam(method.parameters(), lr=0.05)
    probe = OptimizerProbe(method)
    strategy = Naive(
        model=method, optimizer=opt, train_mb_size=8, evaluator=None,
        plugins=[PromptPoolPlugin(method), probe],
    )
    strategy.train(bench.train_stream[0])
    after_first = {k: v.clone() for k, v in method.state_dict().items()}
    strategy.train(bench.train_stream[1])
    assert len(probe.seen) == 4  # 2 iterations per experience
    for held, trainable in probe.seen:
        assert held == trainable and held  # exactly the trainable tensors, never a frozen one
    changed = [k for k, v in method.state_dict().items() if k in after_first and not torch.equal(v, after_first[k])]
    assert changed, "the second experience trained nothing"
    assert not any(k.startswith("backbone.") for k in changed)
    # what the first experience trained and then froze did not move
    frozen_first = probe.seen[0][1] - probe.seen[2][1]
    named = {id(p): n for n, p in method.named_parameters()}
    assert frozen_first and all(named[i] not in changed for i in frozen_first)


@pytest.mark.parametrize("name", ["growing_pool", "prompt_tuning"])
def test_a_generative_method_trains_on_its_answer_loss_inside_a_strategy(name, toy_data):
    from cl_prompts.backbones.testing import tiny_causal_lm

    torch.manual_seed(0)
    lm = tiny_causal_lm("llama")
    with torch.no_grad():
        lm.model.lm_head.weight.mul_(50)  # a random head's logits are near zero: no prompt could move them
    options = {"lr": 0.05, "prompt_length": 2} | ({"projection_dim": 32, "ridge": 1.0} if name == "growing_pool" else {})
    method = build_model(name, lm, num_classes=6, **options)
    method.set_class_names(toy_data.class_names)
    bench = text_benchmark(toy_data, lm)
    losses = []

    class LossProbe(SupervisedPlugin):
        def before_update(self, strategy, **kw):
            losses.append(strategy.loss.item())
            assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in method.trainable_parameters())

    strategy = make_strategy(method, train_mb_size=8, train_epochs=3, evaluator=None, plugins=[LossProbe()])
    strategy.train(bench.train_stream[0])
    steps = len(losses)
    first = method.input_prompts()[0][0].clone()
    strategy.train(bench.train_stream[1])
    assert losses[steps - 1] < losses[0]  # the answer loss goes down over the first experience's epochs
    if name == "growing_pool":  # the first experience's prompt is frozen
        assert torch.equal(method.input_prompts()[0][0], first)
    preds, _ = predict(method, bench.test_stream[0].dataset, batch_size=4)
    assert int(preds.max()) <= 3  # only seen classes are predicted
