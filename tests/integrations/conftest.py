"""A tiny stand-in ContinualMethod (linear head on frozen query features) and fixtures."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from torch import nn

from cl_prompts.backbones.testing import tiny_text_backbone, tiny_vision_backbone
from cl_prompts.data import TextDataset, synthetic_text_dataset
from cl_prompts.run import loop as run_loop


class StandIn(nn.Module):
    """One head block per experience; old blocks frozen; records every lifecycle call.

    It implements the training interface the plugin calls (cl_prompts.methods.base) in
    the simplest way: train-mode logits are the prediction's, no mask, no auxiliary term.
    """

    name = "standin"

    def __init__(self, backbone, num_classes: int, requires_training: bool = True, lr: float = 0.05):
        super().__init__()
        self.backbone, self.num_classes, self.lr = backbone, num_classes, lr
        self.requires_training = requires_training
        self.blocks = nn.ParameterList()
        self.block_classes: list[list[int]] = []
        self.finished: list[bool] = []
        self.register_buffer("seen", torch.zeros(num_classes, dtype=torch.bool))
        self.register_buffer("current_mask", torch.zeros(num_classes, dtype=torch.bool))
        self.register_buffer("sums", torch.zeros(num_classes, backbone.hidden_size))
        self.calls: list[tuple] = []

    @property
    def current_experience(self):
        return len(self.finished) - 1

    @property
    def is_open(self):
        return bool(self.finished) and not self.finished[-1]

    def begin_experience(self, experience, classes):
        self.calls.append(("begin", experience, list(classes)))
        gen = torch.Generator().manual_seed(experience)
        w = torch.randn(len(classes), self.backbone.hidden_size, generator=gen) * 0.1
        self.blocks.append(nn.Parameter(w, requires_grad=self.requires_training))
        self.block_classes.append(list(classes))
        self.finished.append(False)
        self.seen[torch.tensor(classes)] = True
        self.current_mask.zero_()
        self.current_mask[torch.tensor(classes)] = True

    def end_experience(self, experience):
        self.calls.append(("end", experience))
        self.finished[experience] = True
        self.blocks[experience].requires_grad_(False)

    def trainable_parameters(self):
        return [p for p in self.blocks if p.requires_grad]

    def make_optimizer(self):
        params = self.trainable_parameters()
        return torch.optim.SGD(params, lr=self.lr) if params else None

    def _logits(self, inputs):
        q = self.backbone.query_features(inputs)  # (B, D)
        if not self.requires_training:  # nearest class mean
            return F.normalize(q, dim=-1) @ F.normalize(self.sums, dim=-1).T
        out = q.new_zeros(q.shape[0], self.num_classes)
        for w, cls in zip(self.blocks, self.block_classes, strict=True):
            out[:, cls] = q @ w.T
        return out

    def forward(self, inputs):
        if self.training and self.is_open:
            self.calls.append(("forward", int(inputs["input_ids"].shape[0])))
        return self._logits(inputs).masked_fill(~self.seen, float("-inf"))  # (B, C)

    def mask_training_logits(self, logits, targets=None):
        return logits

    def pop_auxiliary_losses(self):
        return []

    def training_loss(self, inputs, targets):
        self.calls.append(("loss", int(targets.shape[0])))
        return F.cross_entropy(self(inputs), targets)

    def observe(self, inputs, targets):
        self.calls.append(("observe", int(targets.shape[0])))
        if not self.requires_training:
            self.sums.index_add_(0, targets, self.backbone.query_features(inputs))

    def predict_task(self, inputs):
        return None


@pytest.fixture(scope="session")
def text_backbone():
    return tiny_text_backbone(max_length=16)


@pytest.fixture(scope="session")
def vision_backbone():
    return tiny_vision_backbone()


@pytest.fixture(scope="session")
def toy_data():
    return synthetic_text_dataset(num_classes=6, num_experiences=3, train_per_class=8, test_per_class=4)


@pytest.fixture()
def standin_cls():
    return StandIn


def _method_settings() -> dict[str, dict]:
    """Every method's settings for the tiny backbone, kept in one place: tests/methods/conftest.py
    (test modules cannot import a conftest in importlib mode, so it is loaded by path)."""
    path = Path(__file__).resolve().parents[1] / "methods" / "conftest.py"
    spec = importlib.util.spec_from_file_location("tests_methods_settings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.TINY_OVERRIDES)


@pytest.fixture(scope="session")
def tiny_settings():
    return _method_settings()


# ---------------------------------------------------------------- runner / Avalanche alignment
def record_runner_batches(monkeypatch) -> list[list[int]]:
    """From now on, every train batch the runner trains on (train-split indices, in order); the
    batches that compute the frozen queries ahead of training are not training batches."""
    batches: list[list[int]] = []
    fetch, ahead = run_loop.TokenizedStream.batch, run_loop.cache_training_queries
    computing_ahead: list[bool] = []

    def recording_batch(self, split, idx):
        if split == "train" and not computing_ahead:
            batches.append(idx.tolist())
        return fetch(self, split, idx)

    def not_recorded(*args, **kwargs):
        computing_ahead.append(True)
        try:
            return ahead(*args, **kwargs)
        finally:
            computing_ahead.pop()

    monkeypatch.setattr(run_loop.TokenizedStream, "batch", recording_batch)
    monkeypatch.setattr(run_loop, "cache_training_queries", not_recorded)
    return batches


def in_order(data: TextDataset, order: list[int]) -> TextDataset:
    """The same dataset with its train split in ``order`` (every train sample exactly once)."""
    assert sorted(order) == list(range(len(data.train))), "the runner did not see every sample once"
    return TextDataset(data.train.take(order), data.test, list(data.class_names),
                       [list(e) for e in data.experiences], data.name)


class ContinueRunnerRng(SupervisedPlugin):
    """At each experience's first training iteration, the global RNG is put back where it was
    right after the method grew, undoing the draw the DataLoader made when it started.

    The method grows first (PromptStrategy: in model_adaptation; Naive: in the
    PromptPoolPlugin listed first), so ``before_training_exp`` here sees the RNG just after
    growth. What training itself draws (joint's replayed rows) then follows as in the
    runner, and so does the next growth.
    """

    def __init__(self):
        super().__init__()
        self.state: torch.Tensor | None = None

    def before_training_exp(self, strategy, **kwargs):
        self.state = torch.get_rng_state()

    def before_training_iteration(self, strategy, **kwargs):
        if strategy.clock.train_exp_iterations == 0:
            torch.set_rng_state(self.state)


@pytest.fixture(scope="session")
def align():
    """Helpers to train an Avalanche strategy on the runner's batches, in the runner's order,
    with the runner's global RNG (test modules cannot import the conftest in importlib mode)."""
    return SimpleNamespace(record_runner_batches=record_runner_batches, in_order=in_order,
                           ContinueRunnerRng=ContinueRunnerRng)
