"""Every registered method on the tiny 3-experience stream: the contract of docs/design.md."""

from __future__ import annotations

import pytest
import torch

from cl_prompts.methods import list_methods, load_model

METHODS = list_methods()


def test_every_documented_method_is_registered():
    expected = {"l2p", "dualprompt", "coda_prompt", "growing_pool", "prompt_tuning", "ncm", "slda",
                "ranpac", "linear_probe", "finetune", "joint"}
    assert expected <= set(METHODS)


@pytest.mark.parametrize("name", METHODS)
def test_training_loss_goes_down(name, backbone, stream, h):
    model = h.build(name, backbone)
    if not model.requires_training:
        assert model.trainable_parameters() == [] and model.make_optimizer() is None
        return
    losses = h.run_experience(model, 0, *stream[0], steps=20)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.7 * losses[0], losses


# running statistics that observation (not the optimizer) updates by design
STATISTICS = ("usage", "usage_at_task_start", "class_sums", "class_counts", "gram_upper",
              "second_moment", "readout", "weight", "bias")
# methods whose finished experiences' head rows are frozen for good
OLD_HEAD_FROZEN = {"l2p", "dualprompt", "coda_prompt", "growing_pool", "prompt_tuning", "linear_probe", "ncm"}


def _untrainable_state(model):
    trainable = {id(p) for p in model.trainable_parameters()}
    return {
        n: t.detach().clone()
        for n, t in model.state_dict(keep_vars=True).items()
        if id(t) not in trainable and not n.endswith(STATISTICS)
    }


@pytest.mark.parametrize("name", METHODS)
def test_untrained_tensors_stay_bit_identical(name, backbone, stream, h):
    """Whatever is not handed to the optimizer (old tasks, backbone) does not move while training."""
    model = h.build(name, backbone)
    for e, (classes, x, y) in enumerate(stream):
        model.begin_experience(e, classes)
        assert all(p.requires_grad for p in model.trainable_parameters())
        before = _untrainable_state(model)
        if model.requires_training:
            opt = model.make_optimizer()
            for _ in range(5):
                opt.zero_grad()
                model.training_loss(x, y).backward()
                opt.step()
        else:
            model.observe(x, y)
        after = model.state_dict()
        for n, t in before.items():
            assert torch.equal(t, after[n]), f"{n} moved during experience {e}"
        model.end_experience(e)


@pytest.mark.parametrize("name", METHODS)
def test_finished_experiences_stay_frozen(name, backbone, stream, h):
    """Frozen segments (pool tasks, attention vectors, keys, old head rows) never change later."""
    model = h.build(name, backbone)
    h.run_experience(model, 0, *stream[0], steps=5)
    state0 = {n: t.clone() for n, t in model.state_dict().items()}
    h.run_experience(model, 1, *stream[1], steps=5)
    h.run_experience(model, 2, *stream[2], steps=5)
    state2 = model.state_dict()
    frozen = [n for n in state0 if "frozen" in n]
    if name in OLD_HEAD_FROZEN:
        frozen += [n for n in state0 if n.startswith("head.") and n.endswith(".0")]
    if name == "ncm":  # the prototypes of experience 0's classes
        state0 = {**state0, "class_sums": state0["class_sums"][:2], "class_counts": state0["class_counts"][:2]}
        frozen += ["class_sums", "class_counts"]
    for n in frozen:  # growing tensors: the rows that existed after experience 0
        old = state0[n]
        assert torch.equal(state2[n][: old.shape[0]], old), f"{n} changed after experience 0"
    expect_segments = {"dualprompt", "coda_prompt", "growing_pool"}
    if name in expect_segments:
        assert any(state0[n].numel() for n in frozen if "frozen" in n)


@pytest.mark.parametrize("name", METHODS)
def test_shared_backbone_is_never_modified(name, backbone, stream, h):
    before = {n: p.detach().clone() for n, p in backbone.named_parameters()}
    model = h.build(name, backbone)
    h.run_stream(model, stream, steps=3)
    assert all(not p.requires_grad for p in backbone.parameters())
    for n, p in backbone.named_parameters():
        assert torch.equal(before[n], p), n


@pytest.mark.parametrize("name", METHODS)
def test_save_load_gives_identical_predictions(name, backbone, stream, h, tmp_path):
    model = h.build(name, backbone)
    h.run_stream(model, stream, steps=5)
    model.save_pretrained(tmp_path / name)
    loaded = load_model(tmp_path / name, backbone)
    assert type(loaded) is type(model) and loaded.config == model.config
    x = {k: torch.cat([s[1][k] for s in stream]) for k in stream[0][1]}
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
        t1, t2 = model.predict_task(x), loaded.predict_task(x)
    assert (t1 is None and t2 is None) or torch.equal(t1, t2)
    # a loaded model continues like the original: same trainable set for the next experience
    assert len(loaded.trainable_parameters()) == len(model.trainable_parameters())


@pytest.mark.parametrize("name", METHODS)
def test_unseen_classes_are_minus_inf_and_seen_are_finite(name, backbone, stream, h):
    model = h.build(name, backbone)
    h.run_experience(model, 0, *stream[0], steps=3)
    with torch.no_grad():
        logits = model(stream[1][1])
    assert logits.shape == (stream[1][1]["input_ids"].shape[0], 6)
    assert torch.isinf(logits[:, 2:]).all() and (logits[:, 2:] < 0).all()
    assert torch.isfinite(logits[:, :2]).all()


@pytest.mark.parametrize("name", METHODS)
def test_learns_the_stream(name, backbone, stream, h):
    """After the stream, every class is recognised (chance is 1/6), except by finetune."""
    model = h.build(name, backbone)
    h.run_stream(model, stream, steps=25)
    x = {k: torch.cat([s[1][k] for s in stream]) for k in stream[0][1]}
    y = torch.cat([s[2] for s in stream])
    correct = (model.predict(x) == y).float()
    if name == "finetune":  # the forgetting reference: the last experience is learned, the first forgotten
        last, first = correct[-16:].mean().item(), correct[:16].mean().item()
        assert last > 0.9 and first < 0.5, (first, last)
    else:
        assert correct.mean().item() > 0.8, correct.mean().item()


# prompts (coda_prompt: components of a layer) each routing method holds after 3 experiences
ROUTED = {"l2p": 6, "dualprompt": 3, "coda_prompt": 9, "growing_pool": 3}
TOKEN_PROMPTS = {"l2p": 6, "growing_pool": 3, "prompt_tuning": 1}  # prompts each holds after 3 experiences


@pytest.mark.parametrize("name", METHODS)
def test_inspection_hooks_agree_with_each_other(name, backbone, stream, h):
    model = h.build(name, backbone)
    h.run_stream(model, stream, steps=2)
    x = {k: torch.cat([s[1][k] for s in stream]) for k in stream[0][1]}
    route, keys = model.routing(x), model.routing_keys()
    if name not in ROUTED:
        assert route is None and keys is None
    else:
        values, owners = keys
        assert route.queries.shape == (len(route.experience), values.shape[1])  # matched in one space
        assert owners.shape == (values.shape[0],) and owners.min() >= -1 and owners.max() < 3
        assert ((route.prompt_ids >= 0) & (route.prompt_ids < ROUTED[name])).all()
    prompts = model.input_prompts()
    if name not in TOKEN_PROMPTS:
        assert prompts is None
    else:
        values, owners = prompts
        assert values.shape[0] == owners.shape[0] == TOKEN_PROMPTS[name]
        assert values.shape[2] == backbone.hidden_size and not values.requires_grad
