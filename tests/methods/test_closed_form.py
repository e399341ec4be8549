"""ranpac and slda: exact statistics, so the order of experiences and batches does not matter."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import cl_prompts.methods.closed_form as closed_form
from cl_prompts.methods.closed_form import (
    RidgeStatistics,
    pack_upper,
    random_relu_features,
    unpack_upper,
)

CLOSED_FORM = ("ranpac", "slda")


def _all_inputs(stream):
    x = {k: torch.cat([exp[1][k] for exp in stream]) for k in stream[0][1]}
    return x, torch.cat([exp[2] for exp in stream])


def _feed(model, stream, order, batch=5):
    """Feed the experiences in ``order`` (as experiences 0, 1, ...), in batches of ``batch``."""
    for e, j in enumerate(order):
        classes, x, y = stream[j]
        model.begin_experience(e, classes)
        for s in range(0, len(y), batch):
            model.observe({k: v[s : s + batch] for k, v in x.items()}, y[s : s + batch])
        model.end_experience(e)
    model.eval()
    return model


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_any_experience_order_gives_the_same_predictions(name, backbone, stream, h):
    x, _ = _all_inputs(stream)
    reference = None
    for order in itertools.permutations(range(len(stream))):
        model = _feed(h.build(name, backbone, projection_seed=3) if name == "ranpac" else h.build(name, backbone),
                      stream, order, batch=3 + order[0])
        logits = model(x)
        if reference is None:
            reference = logits
        else:
            assert torch.equal(logits.argmax(1), reference.argmax(1)), order
            assert torch.allclose(logits, reference, rtol=1e-5, atol=1e-5), order


@pytest.mark.parametrize("layers", [1, 2])
def test_ranpac_equals_the_joint_ridge_solution(backbone, stream, h, layers):
    model = _feed(h.build("ranpac", backbone, projection_seed=1, layers=layers), stream, range(len(stream)))
    x, y = _all_inputs(stream)
    q = F.normalize(backbone.query_features(x, layers=layers).double(), dim=1)
    assert q.shape[1] == backbone.hidden_size * layers == model.stats.projection.shape[0]
    hidden = random_relu_features(q, model.stats.projection)  # (N, M)
    targets = F.one_hot(y, 6).double()
    m = hidden.shape[1]
    joint = torch.linalg.solve(hidden.T @ hidden + model.config.ridge * torch.eye(m, dtype=torch.float64),
                               hidden.T @ targets)  # (M, C)
    assert torch.allclose(model.readout.double(), joint, rtol=1e-4, atol=1e-6)
    assert torch.equal(model(x).argmax(1), (hidden @ joint).argmax(1))


def test_slda_equals_lda_on_all_the_data(backbone, stream, h):
    model = _feed(h.build("slda", backbone, shrinkage=0.1), stream, range(len(stream)))
    x, y = _all_inputs(stream)
    q = F.normalize(backbone.query_features(x, layers=model.config.layers).double(), dim=1)
    means = torch.stack([q[y == c].mean(0) for c in range(6)])
    centred = q - means[y]
    cov = 0.9 * centred.T @ centred / len(y) + 0.1 * torch.eye(q.shape[1], dtype=torch.float64)
    precision = torch.linalg.inv(cov)
    expected = q @ precision @ means.T - 0.5 * ((means @ precision) * means).sum(1)
    assert torch.allclose(model(x).double(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layers", [1, 2])
def test_closed_form_methods_learn_the_stream(backbone, stream, h, layers):
    x, y = _all_inputs(stream)
    for name in (*CLOSED_FORM, "ncm"):
        model = _feed(h.build(name, backbone, layers=layers), stream, range(len(stream)))
        assert model.feature_dim == backbone.hidden_size * layers
        assert (model(x).argmax(1) == y).float().mean() > 0.9, name


def test_ncm_prototypes_are_class_means_of_the_layer_features(backbone, stream, h):
    model = _feed(h.build("ncm", backbone, layers=2), stream, range(len(stream)))
    x, y = _all_inputs(stream)
    q = backbone.query_features(x, layers=2)  # (N, 2 * D)
    expected = torch.stack([q[y == c].mean(0) for c in range(6)])
    assert torch.allclose(model.prototypes(), expected, atol=1e-5)


def test_unobserved_classes_are_never_predicted(backbone, stream, h):
    model = h.build("ranpac", backbone)
    classes, x, y = stream[0]
    model.begin_experience(0, classes)
    model.observe({k: v[y == classes[0]] for k, v in x.items()}, y[y == classes[0]])
    model.end_experience(0)
    assert bool((model(x).argmax(1) == classes[0]).all())


def test_the_gram_built_from_its_upper_blocks_is_the_full_symmetric_sum(monkeypatch):
    monkeypatch.setattr(closed_form, "GRAM_BLOCK", 7)  # 40 random features: 6 blocks
    stats = RidgeStatistics(5, 3, 40, seed=0)
    assert len(stats._blocks) == 6
    x, y = torch.randn(23, 5), torch.randint(0, 3, (23,))
    stats.add(x[:9], y[:9])
    stats.add(x[9:], y[9:])
    h = stats.expand(x)  # (23, 40)
    packed = stats.state_dict()["gram_upper"]  # saved: the upper triangle; the lower blocks filled in
    assert packed.shape == (40 * 41 // 2,)
    saved = stats.gram.clone()
    for i, rows in enumerate(stats._blocks):
        for cols in stats._blocks[i + 1:]:
            assert torch.equal(saved[cols, rows], saved[rows, cols].T)
    assert torch.allclose(saved, h.T @ h)
    assert torch.equal(torch.triu(unpack_upper(packed, 40)), torch.triu(saved))
    gram, rhs, ridge = stats.system(3.0)
    assert torch.equal(gram, saved) and ridge == 3.0
    assert torch.allclose(stats.solve(3.0), torch.linalg.solve(h.T @ h + 3.0 * torch.eye(40, dtype=torch.float64),
                                                               stats.class_sums.T))


@pytest.mark.parametrize("bad", [{"ridge": 0.0}, {"projection_dim": 0}, {"projection_seed": -1}, {"normalize": 1},
                                 {"layers": 0}, {"layers": 1.0}])
def test_ranpac_config_refuses_bad_values(bad, backbone, h):
    with pytest.raises((ValueError, TypeError)):
        h.build("ranpac", backbone, **bad)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1])
def test_slda_refuses_shrinkage_outside_the_unit_interval(bad, backbone, h):
    with pytest.raises(ValueError, match="shrinkage"):
        h.build("slda", backbone, shrinkage=bad)


@pytest.mark.parametrize("name", ["ranpac", "slda", "ncm"])
def test_class_similarity_is_the_cosine_to_the_nearest_class_mean(name, backbone, stream, h):
    model = _feed(h.build(name, backbone, layers=2), stream, range(2))  # classes 0..3 seen, 4 and 5 not
    x, y = _all_inputs(stream)
    q = backbone.query_features(x, layers=2).double()
    if name == "ranpac":
        q = random_relu_features(F.normalize(q, dim=1), model.stats.projection)
    elif name == "slda":
        q = F.normalize(q, dim=1)
    seen = y < 4
    means = F.normalize(torch.stack([q[seen][y[seen] == c].mean(0) for c in range(4)]), dim=1)
    expected = (F.normalize(q, dim=1) @ means.T).amax(1)
    assert torch.allclose(model.class_similarity(x).double(), expected, atol=1e-5)


def test_growing_pool_class_similarity_reads_its_routing_statistics(backbone, stream, h):
    model = h.build("growing_pool", backbone)
    h.run_stream(model, stream[:2], steps=2)
    x, _ = _all_inputs(stream)
    stats = model.route_stats
    expected = stats.class_similarity(backbone.query_features(x, layers=model.config.layers))
    assert torch.equal(model.class_similarity(x), expected) and expected.shape == (x["input_ids"].shape[0],)
    assert float(expected.max()) <= 1 + 1e-9


def test_a_ranpac_ensemble_averages_independent_projections_and_saves_them(tmp_path):
    from cl_prompts.backbones.testing import tiny_text_backbone
    from cl_prompts.methods import build_model, load_model

    bb = tiny_text_backbone()
    x = bb.tokenize([f"sentence {i} about topic {i % 3}" for i in range(12)])
    y = torch.arange(12) % 3
    options = {"projection_dim": 32, "ridge": 1.0, "projection_seed": 5}
    one = build_model("ranpac", bb, 3, **options)
    two = build_model("ranpac", bb, 3, **options, ensemble=2)
    second = build_model("ranpac", bb, 3, **{**options, "projection_seed": 6})
    for model in (one, two, second):
        model.begin_experience(0, [0, 1, 2])
        model.observe(x, y)
        model.end_experience(0)
    assert "more_readouts" not in one.state_dict()  # a single projection saves what it always did
    torch.testing.assert_close(two.stats.projection, one.stats.projection)  # the first member is ranpac
    torch.testing.assert_close(two.more_stats[0].projection, second.stats.projection)
    torch.testing.assert_close(two(x), (one(x) + second(x)) / 2)
    two.save_pretrained(tmp_path / "two")
    torch.testing.assert_close(load_model(tmp_path / "two", bb)(x), two(x))
    assert type(two).config_class.from_preset("ensemble2").ensemble == 2


def test_packed_gram_round_trips_and_a_file_with_the_whole_gram_still_loads(tmp_path):
    from safetensors.torch import load_file, save_file

    from cl_prompts.backbones.testing import tiny_text_backbone
    from cl_prompts.methods import build_model, load_model

    g = torch.randn(9, 9, dtype=torch.float64)
    g = g + g.T
    assert torch.equal(unpack_upper(pack_upper(g), 9), g)
    with pytest.raises(ValueError, match="packed 9 x 9 triangle has 45 values"):
        unpack_upper(torch.zeros(44, dtype=torch.float64), 9)
    bb = tiny_text_backbone()
    x, y = bb.tokenize([f"sentence {i} about topic {i % 3}" for i in range(12)]), torch.arange(12) % 3
    model = build_model("ranpac", bb, 3, projection_dim=32, ridge=1.0, projection_seed=5)
    model.begin_experience(0, [0, 1, 2])
    model.observe(x, y)
    model.end_experience(0)
    model.save_pretrained(tmp_path / "new")
    assert torch.equal(load_model(tmp_path / "new", bb).stats.gram, model.stats.gram)
    # the format before packing: the whole (M, M) Gram matrix
    model.save_pretrained(tmp_path / "old")
    weights = tmp_path / "old" / "method.safetensors"
    tensors = load_file(str(weights))
    tensors["stats.gram"] = unpack_upper(tensors.pop("stats.gram_upper"), 32)
    save_file(tensors, str(weights))
    old = load_model(tmp_path / "old", bb)
    assert torch.allclose(old.stats.gram, model.stats.gram) and torch.equal(old(x), model(x))


