"""The CLI runner (plain PyTorch loop) and PromptStrategy (Avalanche) compute the same thing.

Both drive a method through the same lifecycle (begin_experience, training_loss or
observe, end_experience, task-agnostic forward), so on the same data they must agree:

- ``ncm`` draws nothing at random and its class means do not depend on batching, so
  the two paths are compared as a user would run them: the runner with its own seeded
  batch order, Avalanche with its default shuffled loader and other batch sizes.
- trained methods (every one, in PromptStrategy and in a plain ``Naive`` with the plugin)
  depend on the order of the batches and on the global torch RNG, which the loops use
  differently:
  * the runner shuffles each experience with a generator of its own; Avalanche's loader
    shuffles with the global RNG. Here the runner's order is recorded and the Avalanche
    stream is built in that order and trained with ``shuffle=False``;
  * the runner draws from the global RNG only where the method does (new prompts and head
    rows in ``begin_experience``, joint's replayed rows); Avalanche also draws a base seed from it each time a
    DataLoader iterator starts (torch does this even with ``num_workers=0``), so from
    experience 1 on the new tensors would start from other values. A plugin undoes that
    draw, so the global RNG follows the runner's.
  With both aligned the trained tensors, predictions and accuracy matrices must be
  bit-identical. Without the alignment they are not (different, equally valid, random
  draws), which is why the user-facing comparison is the ncm one.

Each path gets its own backbone (same seed, same weights), so that no query feature
computed by one path is served from the other's query cache.
"""

from __future__ import annotations

import pytest
import torch
from avalanche.training import Naive

from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.data import synthetic_text_dataset
from cl_prompts.integrations.avalanche import (
    PromptPoolPlugin,
    make_strategy,
    predict,
    results_evaluator,
    text_benchmark,
)
from cl_prompts.methods import build_model, get_method_class, list_methods
from cl_prompts.run import RunConfig, run
from cl_prompts.run import checkpoints as ckpt

MAX_LENGTH = 16
TRAINED = [n for n in list_methods() if get_method_class(n).requires_training]


@pytest.fixture(scope="module")
def data():
    # 6 classes in 3 experiences; 16 train / 8 test texts per experience
    return synthetic_text_dataset(num_classes=6, num_experiences=3, train_per_class=8, test_per_class=4)


@pytest.fixture()
def backbones():
    """Two backbones with the same weights and empty query caches: (runner's, avalanche's)."""
    return tiny_text_backbone(max_length=MAX_LENGTH), tiny_text_backbone(max_length=MAX_LENGTH)


def _non_backbone_state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("backbone.")}


def run_runner(name, data, backbone, out, test_stream, *, batch_size, seed=0, **options):
    """The runner's results, plus per experience e: its model's state and predictions on 0..e.

    The model of each row is the checkpoint the runner wrote after that experience.
    Loading it and predicting draw from the global RNG; the runner isolates its callback,
    so the run itself is not disturbed.
    """
    states, preds = [], []

    def after(e, _state):
        model, _ = ckpt.load_checkpoint(out, backbone, identity={}, restore_rng=False)
        states.append(_non_backbone_state(model))
        preds.append([predict(model, test_stream[j], batch_size=64)[0] for j in range(e + 1)])

    config = RunConfig(
        method=name, seed=seed, batch_size=batch_size, eval_batch_size=7, max_length=MAX_LENGTH,
        method_options=options, out=str(out), progress=False, plots=False,
    )
    results = run(config, backbone=backbone, dataset=data, on_experience_end=after)
    return results, states, preds


def run_avalanche(method, bm, *, train_kwargs=None, plugins=(), batch_size, path="strategy"):
    """Train experience by experience with PromptStrategy (or Naive + PromptPoolPlugin with the
    method's optimizer); evaluate on the seen ones."""
    if path == "strategy":
        strategy = make_strategy(method, train_mb_size=batch_size, eval_mb_size=5, plugins=list(plugins))
    else:
        strategy = Naive(
            model=method, optimizer=torch.optim.SGD(method.parameters(), lr=1.0), train_mb_size=batch_size,
            eval_mb_size=5, evaluator=results_evaluator, plugins=[PromptPoolPlugin(method, optimizer="method"),
                                                                    *plugins],
        )
    states, preds = [], []
    for e, exp in enumerate(bm.train_stream):
        strategy.train(exp, **(train_kwargs or {}))
        metrics = strategy.eval(bm.test_stream[: e + 1])
        with torch.random.fork_rng():
            states.append(_non_backbone_state(method))
            preds.append([predict(method, bm.test_stream[j], batch_size=64)[0] for j in range(e + 1)])
    return metrics["EvalStream/Acc_Matrix"], states, preds


def assert_same_matrix(runner_matrix, avalanche_matrix):
    """Runner: percent, None above the diagonal; Avalanche: fractions, 0 where not evaluated."""
    n = len(runner_matrix)
    assert tuple(avalanche_matrix.shape) == (n, n)
    for i in range(n):
        for j in range(n):
            if j > i:
                assert runner_matrix[i][j] is None
            else:
                # both are correct / total over the same test samples: equal up to float32
                assert runner_matrix[i][j] == pytest.approx(100 * float(avalanche_matrix[i, j]), abs=1e-4), (
                    i, j, runner_matrix, avalanche_matrix)


def assert_same_predictions(runner_preds, avalanche_preds):
    assert len(runner_preds) == len(avalanche_preds)
    for e, (row_r, row_a) in enumerate(zip(runner_preds, avalanche_preds, strict=True)):
        for j, (p_r, p_a) in enumerate(zip(row_r, row_a, strict=True)):
            assert torch.equal(p_r, p_a), f"after experience {e}, test experience {j}: {p_r} vs {p_a}"


def test_ncm_runner_and_avalanche_agree(data, backbones, tmp_path):
    bb_runner, bb_avalanche = backbones
    bm = text_benchmark(data, bb_avalanche)
    results, r_states, r_preds = run_runner("ncm", data, bb_runner, tmp_path / "run", bm.test_stream, batch_size=5)

    torch.manual_seed(123)  # another seed and other batch sizes: ncm must not care
    method = build_model("ncm", bb_avalanche, num_classes=data.num_classes)
    matrix, a_states, a_preds = run_avalanche(method, bm, batch_size=16)

    assert_same_matrix(results["accuracy_matrix"], matrix)
    assert_same_predictions(r_preds, a_preds)
    for e, (s_r, s_a) in enumerate(zip(r_states, a_states, strict=True)):
        assert torch.equal(s_r["class_counts"], s_a["class_counts"]), e
        # float64 sums of the same float32 features: batching may reorder the additions
        torch.testing.assert_close(s_r["class_sums"], s_a["class_sums"], rtol=1e-12, atol=1e-12)
    # not a vacuous comparison: every class was observed and the method beats chance
    assert bool((a_states[-1]["class_counts"] == 8).all())
    assert sum(results["accuracy_matrix"][-1]) / 3 > 100 / 6


@pytest.mark.parametrize("name", TRAINED)
def test_trained_method_runner_and_avalanche_agree_exactly(name, data, backbones, tmp_path, monkeypatch,
                                                           tiny_settings, align):
    bb_runner, bb_avalanche = backbones
    settings = tiny_settings.get(name, {})
    batch_size, seed = 5, 3  # 16 samples per experience: batches of 5, 5, 5, 1

    batches = align.record_runner_batches(monkeypatch)  # train indices, in the runner's order
    # the test stream is the same for both (only the train split is reordered)
    test_stream = text_benchmark(data, bb_avalanche).test_stream
    results, r_states, r_preds = run_runner(
        name, data, bb_runner, tmp_path / "run", test_stream, batch_size=batch_size, seed=seed, **settings
    )
    monkeypatch.undo()
    assert [len(b) for b in batches] == [5, 5, 5, 1] * 3

    bm = text_benchmark(align.in_order(data, [i for b in batches for i in b]), bb_avalanche)
    for path in ("strategy", "naive"):
        torch.manual_seed(seed)  # what the runner's seed_everything does before build_model
        method = build_model(name, bb_avalanche, num_classes=data.num_classes, **settings)
        matrix, a_states, a_preds = run_avalanche(
            method, bm, batch_size=batch_size, train_kwargs={"shuffle": False}, plugins=[align.ContinueRunnerRng()],
            path=path,
        )
        assert_same_matrix(results["accuracy_matrix"], matrix)
        assert_same_predictions(r_preds, a_preds)
        for e, (s_r, s_a) in enumerate(zip(r_states, a_states, strict=True)):
            assert sorted(s_r) == sorted(s_a), (path, e)
            differ = [k for k in s_r if not torch.equal(s_r[k], s_a[k])]
            assert not differ, f"{path}: after experience {e} these tensors differ: {differ}"
    # the comparison is sensitive: without the RNG alignment the new tensors of experience
    # 1 start elsewhere, and the states part from there on
    torch.manual_seed(seed)
    method = build_model(name, bb_avalanche, num_classes=data.num_classes, **settings)
    _, unaligned, _ = run_avalanche(method, bm, batch_size=batch_size, train_kwargs={"shuffle": False})
    assert all(torch.equal(unaligned[0][k], r_states[0][k]) for k in r_states[0])
    assert any(not torch.equal(unaligned[1][k], r_states[1][k]) for k in r_states[1])
