"""cl_prompts.run.evaluation: the accuracy matrix's rows, on the whole test set or a per-class subsample."""

import pytest
import torch

from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.cli import _parser, config_from_args
from cl_prompts.data import synthetic_text_dataset
from cl_prompts.results import summarize
from cl_prompts.run import RunConfig, run
from cl_prompts.run.evaluation import evaluate, subsample_mask


class IndexStream:
    """A test split of ``labels`` in experiences of two classes; a sample's input is its index."""

    def __init__(self, labels):
        self.labels = torch.tensor(labels)

    def targets(self, split):
        return self.labels

    def indices(self, split, e):
        return torch.nonzero(torch.isin(self.labels, torch.tensor([2 * e, 2 * e + 1]))).flatten()

    def shortest_first(self, split, idx):
        return idx

    def batch(self, split, idx):
        return idx, self.labels[idx]


class EvenIndexRight:
    """Right on the samples of even index, wrong on the others; records what it scored."""

    def __init__(self, num_classes):
        self.num_classes, self.seen = num_classes, []

    def eval(self):
        pass

    def predict_with_task(self, idx):
        self.seen += idx.tolist()
        truth = STREAM.labels[idx]
        guess = torch.where(idx % 2 == 0, truth, (truth + 1) % self.num_classes)
        return torch.nn.functional.one_hot(guess, self.num_classes).float(), None


# 4 classes in 2 experiences; class 0 has 5 test samples, class 3 a single one
STREAM = IndexStream([0, 1, 0, 2, 0, 1, 3, 2, 0, 1, 0, 2])


def _accuracy(idx):
    return 100.0 * sum(i % 2 == 0 for i in idx) / len(idx)


def test_subsample_mask_keeps_at_most_n_of_each_class_and_every_class():
    labels = STREAM.labels
    mask = subsample_mask(labels, 2)
    kept = labels[mask].tolist()
    assert sorted(kept) == [0, 0, 1, 1, 2, 2, 3]  # class 3 has one sample: kept whole
    assert torch.equal(mask, subsample_mask(labels, 2))  # drawn with a fixed seed
    assert subsample_mask(labels, 100).all()


def test_evaluate_on_the_subsample_scores_only_it():
    model = EvenIndexRight(4)
    mask = subsample_mask(STREAM.labels, 1)
    ev = evaluate(model, STREAM, 1, batch_size=2, subsample=1, whole=False)
    picked = [torch.nonzero(mask & torch.isin(STREAM.labels, torch.tensor(c))).flatten().tolist()
              for c in ([0, 1], [2, 3])]
    assert sorted(model.seen) == sorted(picked[0] + picked[1])
    assert ev.accuracy == ev.subsample == [_accuracy(p) for p in picked]
    assert ev.task_id == [None, None]


def test_evaluate_whole_scores_every_sample_and_reports_the_subsample_apart():
    model = EvenIndexRight(4)
    ev = evaluate(model, STREAM, 1, batch_size=3, subsample=1, whole=True)
    assert sorted(model.seen) == list(range(len(STREAM.labels)))  # each sample once
    assert ev == evaluate(EvenIndexRight(4), STREAM, 1, batch_size=5, subsample=1, whole=True)
    full = evaluate(EvenIndexRight(4), STREAM, 1, batch_size=3)
    assert ev.accuracy == full.accuracy and full.subsample is None
    assert ev.subsample == evaluate(EvenIndexRight(4), STREAM, 1, batch_size=3, subsample=1, whole=False).accuracy
    assert ev.accuracy == [_accuracy([0, 1, 2, 4, 5, 8, 9, 10]), _accuracy([3, 6, 7, 11])]


def _run(out, **kw):
    cfg = RunConfig(method="prompt_tuning", backbone="tiny-bert", out=str(out), progress=False, plots=False,
                    batch_size=8, epochs=2, **kw)
    data = synthetic_text_dataset(num_classes=8, num_experiences=4, train_per_class=6, test_per_class=3)
    return run(cfg, backbone=tiny_text_backbone(), dataset=data)


def test_a_run_with_eval_subsample_scores_the_whole_test_set_last_and_forgetting_on_the_subsample(tmp_path):
    whole = _run(tmp_path / "whole")
    sub = _run(tmp_path / "sub", eval_subsample=1)
    # the same model is trained: the last row, on every test sample, is the same
    assert sub["accuracy_matrix"][-1] == whole["accuracy_matrix"][-1]
    assert sub["final_average_accuracy"] == whole["final_average_accuracy"]
    # the rows before score one sample of each of an experience's two classes: 0, 50 or 100
    assert all(v in (0.0, 50.0, 100.0) for row in sub["accuracy_matrix"][:-1] for v in row if v is not None)
    block = sub["eval_subsample"]
    assert block["per_class"] == 1 and block["accuracy_matrix"][:-1] == sub["accuracy_matrix"][:-1]
    assert all(v in (0.0, 50.0, 100.0) for v in block["accuracy_matrix"][-1])
    expected = summarize(block["accuracy_matrix"])
    for key in ("average_forgetting", "backward_transfer", "forgetting_per_experience"):
        assert sub[key] == expected[key]
    assert "subsample" in sub["forgetting_definition"] and "subsample" not in whole["forgetting_definition"]
    assert "eval_subsample" not in whole


def test_eval_subsample_is_checked_and_does_not_bind_a_resume():
    with pytest.raises(ValueError, match="eval_subsample must be an int >= 1"):
        RunConfig(eval_subsample=0)
    assert RunConfig(eval_subsample=5).identity() == RunConfig().identity()
    args = _parser().parse_args(["run", "--eval-subsample", "5"])
    assert config_from_args(args).eval_subsample == 5
