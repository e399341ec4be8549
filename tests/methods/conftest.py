"""Fixtures of the method tests: a tiny text backbone and a tiny 3-experience synthetic stream."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.methods import build_model

# Tiny models: extra intra-op threads only add contention (on a 2-core CPU a tiny
# training step went from 0.17 s to 0.014 s with one thread).
torch.set_num_threads(1)

NUM_CLASSES = 6
CLASSES_PER_EXP = 2
SAMPLES_PER_CLASS = 8
SEQ_LEN = 10

# Settings that fit the 2-layer, width-32 test backbone and make a few steps enough.
TINY_OVERRIDES: dict[str, dict] = {
    "l2p": {"lr": 0.05, "head_lr": None, "pool_size": 6, "prompt_length": 2, "top_k": 2, "feature": "pooled"},
    "dualprompt": {"lr": 0.05, "g_layers": (0,), "e_layers": (1,), "g_length": 2, "e_length": 3},
    "coda_prompt": {"lr": 0.05, "layers": (0, 1), "components_per_task": 3, "prompt_length": 4},
    "growing_pool": {"lr": 0.05, "prompt_length": 2, "projection_dim": 64, "ridge": 1.0, "prompted_ridge": 1.0},
    "prompt_tuning": {"lr": 0.05, "prompt_length": 3},
    # the linear head (weight and bias blocks); the random tiny backbone's features point
    # almost the same way, which a cosine head separates only slowly
    "linear_probe": {"lr": 0.05, "head": "linear"},
    "joint": {"lr": 0.05},
    "finetune": {"lr": 1e-3, "head_lr": 0.05},
    "ncm": {},
    "ranpac": {"projection_dim": 64, "ridge": 1.0},
    "slda": {},
}


@pytest.fixture(scope="session")
def backbone():
    return tiny_text_backbone(max_length=SEQ_LEN)


def make_stream(seed: int = 0):
    """3 experiences of 2 classes; class c's sequences draw from its own 6 token ids."""
    g = torch.Generator().manual_seed(seed)
    stream = []
    for e in range(NUM_CLASSES // CLASSES_PER_EXP):
        classes = list(range(e * CLASSES_PER_EXP, (e + 1) * CLASSES_PER_EXP))
        ids, targets = [], []
        for c in classes:
            vocab = torch.arange(2000 + 50 * c, 2000 + 50 * c + 6)
            picks = vocab[torch.randint(0, 6, (SAMPLES_PER_CLASS, SEQ_LEN - 2), generator=g)]
            cls_tok = torch.full((SAMPLES_PER_CLASS, 1), 101)
            sep_tok = torch.full((SAMPLES_PER_CLASS, 1), 102)
            ids.append(torch.cat([cls_tok, picks, sep_tok], dim=1))
            targets += [c] * SAMPLES_PER_CLASS
        input_ids = torch.cat(ids)
        inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        stream.append((classes, inputs, torch.tensor(targets)))
    return stream


@pytest.fixture(scope="session")
def stream():
    return make_stream()


def build(name, backbone, **extra):
    torch.manual_seed(0)
    return build_model(name, backbone, NUM_CLASSES, **{**TINY_OVERRIDES[name], **extra})


def run_experience(model, experience, classes, inputs, targets, steps=15):
    """Train (or observe) one experience full-batch; returns the losses (empty for ncm)."""
    model.begin_experience(experience, classes)
    model.train()
    losses = []
    if not model.requires_training:
        model.observe(inputs, targets)
    else:
        opt = model.make_optimizer()
        held = {id(p) for g in opt.param_groups for p in g["params"]}
        assert held == {id(p) for p in model.trainable_parameters()}
        assert all(p.requires_grad for g in opt.param_groups for p in g["params"])
        for _ in range(steps):
            opt.zero_grad()
            loss = model.training_loss(inputs, targets)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    model.end_experience(experience)
    model.eval()
    return losses


def run_stream(model, stream, steps=15):
    return [run_experience(model, e, *exp, steps=steps) for e, exp in enumerate(stream)]


@pytest.fixture(scope="session")
def h():
    """The helpers as one namespace (test files cannot import the conftest in importlib mode)."""
    return SimpleNamespace(build=build, run_experience=run_experience, run_stream=run_stream, make_stream=make_stream)
