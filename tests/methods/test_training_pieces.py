"""One training step from its pieces (train-mode forward, class mask, auxiliary terms, observe)
equals ``training_loss``: the runner and the Avalanche plugin compute the same thing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cl_prompts.methods import list_methods

METHODS = list_methods()


def _grads(model):
    return [None if p.grad is None else p.grad.clone() for p in model.trainable_parameters()]


@pytest.mark.parametrize("name", METHODS)
def test_pieces_give_training_loss_and_its_gradients(name, backbone, stream, h):
    extra = {"ortho_mu": 0.1} if name == "coda_prompt" else {}
    models = []
    for _ in range(2):  # one finished experience, so memories and frozen segments exist
        model = h.build(name, backbone, **extra)  # seeds the global RNG: both start alike
        if not model.requires_training:
            pytest.skip("statistics only: see test_statistics_only_methods_observe_in_train_mode")
        h.run_experience(model, 0, *stream[0], steps=2)
        model.begin_experience(1, stream[1][0])
        model.train()
        models.append(model)
    a, b = models
    _, x, y = stream[1]

    torch.manual_seed(5)
    loss = a.training_loss(x, y)
    loss.backward()

    torch.manual_seed(5)  # joint draws its replayed rows from the global RNG
    with torch.no_grad():
        b.observe(x, y)
    logits = b(x)  # train mode, experience open: the training logits
    pieces = F.cross_entropy(b.mask_training_logits(logits, y), y)
    for term in b.pop_auxiliary_losses():
        pieces = pieces + term
    pieces.backward()

    assert torch.isfinite(loss) and torch.equal(loss.detach(), pieces.detach())
    for ga, gb in zip(_grads(a), _grads(b), strict=True):
        assert (ga is None and gb is None) or torch.equal(ga, gb)
    assert b.pop_auxiliary_losses() == []  # cleared on read


def test_auxiliary_terms_per_method(backbone, stream, h):
    _, x, _ = stream[0]
    terms = {}
    for name, extra in (("l2p", {}), ("dualprompt", {}), ("coda_prompt", {"ortho_mu": 0.1}), ("growing_pool", {})):
        model = h.build(name, backbone, **extra)
        model.begin_experience(0, stream[0][0])
        model.train()
        model(x)
        terms[name] = model.pop_auxiliary_losses()
    assert len(terms["l2p"]) == 1 and len(terms["dualprompt"]) == 1  # key matching
    assert len(terms["coda_prompt"]) == 2  # orthogonality, one per prompted layer
    assert terms["growing_pool"] == []
    assert all(t.dim() == 0 and t.requires_grad for t in terms["l2p"] + terms["coda_prompt"])


def test_train_mode_logits_only_while_an_experience_is_open(backbone, stream, h):
    model = h.build("growing_pool", backbone)
    h.run_experience(model, 0, *stream[0], steps=2)
    model.begin_experience(1, stream[1][0])
    x = torch.cat([stream[0][1]["input_ids"], stream[1][1]["input_ids"]])
    x = {"input_ids": x, "attention_mask": torch.ones_like(x)}
    model.train()
    with torch.no_grad():
        train_logits = model(x)
        model.eval()
        eval_logits = model(x)
    # training routes every input to the open task; prediction routes by the keys
    assert not torch.equal(train_logits, eval_logits)
    model.observe(stream[1][1], stream[1][2])  # its keys are built from what it observed
    model.end_experience(1)
    model.train()
    with torch.no_grad():
        assert torch.equal(model(x), model.eval()(x))  # closed: train mode predicts too


def test_mask_keeps_the_classes_of_the_targets(backbone, stream, h):
    model = h.build("l2p", backbone)
    h.run_experience(model, 0, *stream[0], steps=1)
    model.begin_experience(1, stream[1][0])
    logits = torch.zeros(3, 6)
    masked = model.mask_training_logits(logits)
    assert torch.isinf(masked[:, [0, 1, 4, 5]]).all() and torch.isfinite(masked[:, 2:4]).all()
    replayed = model.mask_training_logits(logits, torch.tensor([2, 0, 3]))  # class 0 replayed
    assert torch.isfinite(replayed[:, [0, 2, 3]]).all() and torch.isinf(replayed[:, [1, 4, 5]]).all()
    assert h.build("joint", backbone).training_class_mask() is None


@pytest.mark.parametrize("name", METHODS)
def test_statistics_only_methods_observe_in_train_mode(name, backbone, stream, h):
    model = h.build(name, backbone)
    if model.requires_training:
        return
    classes, x, y = stream[0]
    model.begin_experience(0, classes)
    model.train()
    with pytest.raises(RuntimeError, match="observe"):
        model.training_loss(x, y)
    model.observe(x, y)
    with torch.no_grad():
        assert model(x).shape == (x["input_ids"].shape[0], 6)  # a train-mode forward works
    assert model.pop_auxiliary_losses() == []
