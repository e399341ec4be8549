"""KeyIndex: exact backends agree, approximate recall, restriction, training, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cl_prompts.index import KeyIndex


def _data(n: int = 3000, d: int = 32, b: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    keys = F.normalize(torch.randn(n, d, generator=g), dim=1)
    queries = torch.randn(b, d, generator=g)
    return keys, queries


def _exact(keys, queries, k, ids=None):
    s, j = torch.topk(queries @ keys.T, k, dim=1)
    return s, (j if ids is None else ids[j])


def _recall(found: torch.Tensor, truth: torch.Tensor) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.numel()


def _assert_same_topk(scores, ids, ref_scores, ref_ids, tol=1e-5):
    # equal ids, except where two candidates tie within float rounding
    torch.testing.assert_close(scores, ref_scores, atol=tol, rtol=0)
    differ = ids != ref_ids
    if differ.any():
        gaps = (ref_scores[:, :-1] - ref_scores[:, 1:]).abs()
        assert bool((gaps < tol).any()), "ids differ without a near-tie"


@pytest.mark.parametrize("backend", ["auto", "torch", "faiss"])
def test_flat_equals_torch_exact(backend):
    keys, q = _data()
    ids = torch.arange(1000, 1000 + keys.shape[0])  # non-trivial external ids
    idx = KeyIndex(32, "flat", flat_backend=backend)
    idx.add(keys[:1000], ids[:1000])
    idx.add(keys[1000:], ids[1000:])  # added in two parts, as the pool does per task
    s, i = idx.search(q, 7)
    rs, ri = _exact(keys, q, 7, ids)
    _assert_same_topk(s, i, rs, ri)
    assert idx.backend == ("faiss" if backend == "auto" else backend)  # faiss is installed here
    assert idx.describe() == {"index": "flat", "backend": idx.backend, "keys": keys.shape[0]}


def test_flat_falls_back_to_torch_without_faiss_and_says_so(monkeypatch):
    import cl_prompts.index.key_index as key_index

    monkeypatch.setattr(key_index, "is_available", lambda name: False)
    with pytest.warns(UserWarning, match="faiss is not installed: index 'flat' searches exactly in torch"):
        idx = KeyIndex(32, "flat")
    keys, q = _data()
    idx.add(keys, torch.arange(keys.shape[0]))
    assert idx.backend == "torch" and idx._faiss is None
    _assert_same_topk(*idx.search(q, 3), *_exact(keys, q, 3, torch.arange(keys.shape[0])))


def test_torch_spec_equals_exact_and_keeps_device():
    keys, q = _data(n=500)
    idx = KeyIndex(32, "torch")
    idx.add(keys, torch.arange(500))
    s, i = idx.search(q, 5)
    rs, ri = _exact(keys, q, 5)
    _assert_same_topk(s, i, rs, ri)
    assert i.dtype == torch.long and s.dtype == torch.float32
    assert idx.is_exact and idx.is_trained


@pytest.mark.parametrize(
    "spec,kw,min_recall",
    [("HNSW32", {"ef_search": 64}, 0.9), ("IVF16,Flat", {"nprobe": 16}, 0.999)],
)
def test_approximate_recall_reported(spec, kw, min_recall, capsys):
    keys, q = _data()
    idx = KeyIndex(32, spec, **kw)
    idx.add(keys, torch.arange(keys.shape[0]))
    assert not idx.is_exact and idx.is_trained and idx.backend == "faiss"
    _, i = idx.search(q, 10)
    recall = _recall(i, _exact(keys, q, 10)[1])
    with capsys.disabled():
        print(f"\n  recall@10 {spec} {kw} on 3000 random 32-d keys: {recall:.3f}")
    assert recall >= min_recall  # nprobe = nlist makes IVF exhaustive


@pytest.mark.parametrize("spec", ["flat", "torch", "HNSW32", "IVF8,Flat"])
def test_id_ranges_restrict_results(spec):
    keys, q = _data(n=800)
    ids = torch.arange(800)
    idx = KeyIndex(32, spec, nprobe=8, ef_search=200)
    idx.add(keys, ids)
    ranges = [(0, 100), (500, 600)]
    _, i = idx.search(q, 5, id_ranges=ranges)
    ok = ((i >= 0) & (i < 100)) | ((i >= 500) & (i < 600))
    assert bool(ok.all())
    mask = torch.zeros(800, dtype=torch.bool)
    mask[:100] = mask[500:600] = True
    ref = _exact(keys[mask], q, 5, ids[mask])[1]
    assert _recall(i, ref) >= (1.0 if spec in ("flat", "torch") else 0.9)


def test_fewer_eligible_than_k_pads_with_minus_one():
    keys, q = _data(n=50)
    idx = KeyIndex(32, "flat")
    idx.add(keys, torch.arange(50))
    s, i = idx.search(q, 4, id_ranges=[(10, 12)])
    assert bool((i[:, 2:] == -1).all()) and bool(torch.isinf(s[:, 2:]).all())
    assert set(i[:, :2].flatten().tolist()) <= {10, 11}


def test_empty_index_returns_no_results():
    idx = KeyIndex(8)
    s, i = idx.search(torch.randn(3, 8), 2)
    assert i.shape == (3, 2) and bool((i == -1).all()) and bool(torch.isinf(s).all())


def test_ivf_untrained_warns_and_searches_exactly_then_trains():
    keys, q = _data(n=300)
    idx = KeyIndex(32, "IVF64,Flat", nprobe=64)
    with pytest.warns(UserWarning, match="needs at least 64 keys to train, it has 40"):
        idx.add(keys[:40], torch.arange(40))
    assert not idx.is_trained and idx.backend == "torch"
    s, i = idx.search(q, 3)
    _assert_same_topk(s, i, *_exact(keys[:40], q, 3))
    idx.add(keys[40:], torch.arange(40, 300))  # now enough: trains on all 300
    assert idx.is_trained and idx.backend == "faiss"
    _, i = idx.search(q, 3)
    assert _recall(i, _exact(keys, q, 3)[1]) == 1.0  # nprobe = nlist: exhaustive


def test_reset_empties():
    keys, _ = _data(n=20)
    idx = KeyIndex(32, "HNSW16")
    idx.add(keys, torch.arange(20))
    idx.reset()
    assert idx.ntotal == 0 and len(idx) == 0


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"dim": 0}, ValueError, "dim must be > 0"),
        ({"dim": 8, "spec": "NotAnIndex"}, ValueError, "faiss index_factory string"),
        ({"dim": 8, "spec": ""}, TypeError, "non-empty string"),
        ({"dim": 8, "nprobe": 0}, ValueError, "nprobe must be > 0"),
        ({"dim": 8, "flat_backend": "gpu"}, ValueError, "flat_backend"),
    ],
)
def test_constructor_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        KeyIndex(**kwargs)


def test_add_and_search_errors():
    idx = KeyIndex(8)
    with pytest.raises(ValueError, match=r"keys must have shape \(N, 8\)"):
        idx.add(torch.randn(3, 4), torch.arange(3))
    with pytest.raises(ValueError, match="ids must have shape"):
        idx.add(torch.randn(3, 8), torch.arange(2))
    with pytest.raises(ValueError, match="NaN or inf"):
        idx.add(torch.full((1, 8), float("nan")), torch.arange(1))
    with pytest.raises(ValueError, match=r"queries must have shape \(B, 8\)"):
        idx.search(torch.randn(8), 1)
    with pytest.raises(ValueError, match="k must be > 0"):
        idx.search(torch.randn(2, 8), 0)


def test_deepcopy_rebuilds_an_equal_independent_index():
    import copy

    keys, q = _data(n=500)
    idx = KeyIndex(32, "HNSW16", ef_search=64)
    idx.add(keys, torch.arange(500))
    dup = copy.deepcopy(idx)
    assert torch.equal(dup.search(q, 5)[1], idx.search(q, 5)[1])
    dup.reset()
    assert idx.ntotal == 500


@pytest.mark.parametrize("spec,kw", [("flat", {}), ("IVF16,Flat", {"nprobe": 16})])
def test_shards_give_the_single_index_results(spec, kw):
    """IndexShards: each key in one shard, results merged; exhaustive search stays exact."""
    keys, q = _data()
    ids = torch.arange(len(keys)) * 3 + 7
    one, two = KeyIndex(32, spec, **kw), KeyIndex(32, spec, shards=2, **kw)
    for index in (one, two):
        index.add(keys[:1000], ids[:1000])
        index.add(keys[1000:], ids[1000:])  # after training: straight into the shards
    assert two.backend == "faiss" and two.ntotal == one.ntotal == len(keys)
    ref_s, ref_i = _exact(keys, q, 5, ids)
    for index in (one, two):
        _assert_same_topk(*index.search(q, 5), ref_s, ref_i)
    s, i = two.search(q, 5, id_ranges=[(7, 7 + 3 * 100)])  # selectors reach every shard
    assert bool(((i >= 7) & (i < 307)).all())
    copy = __import__("copy").deepcopy(two)
    assert torch.equal(copy.search(q, 5)[1], two.search(q, 5)[1])


def test_dropping_the_key_copy_leaves_the_faiss_index_alone():
    keys, q = _data(n=4000)
    ids = torch.arange(len(keys))
    kept = KeyIndex(32, "IVF16,PQ8x4", nprobe=16)
    lean = KeyIndex(32, "IVF16,PQ8x4", nprobe=16, keep_keys=False, shards=2)
    for index in (kept, lean):
        index.add(keys[:3000], ids[:3000])
        index.add(keys[3000:], ids[3000:])
    assert lean.ntotal == kept.ntotal == 4000
    # PQ8x4 stores 4 bytes a key (+ an 8-byte id) against the float copy's 4 * 32
    assert lean.memory_bytes() < 0.4 * kept.memory_bytes()
    truth = _exact(keys, q, 5, ids)[1]
    s_lean, i_lean = lean.search(q, 5)
    assert _recall(i_lean, truth) == pytest.approx(_recall(kept.search(q, 5)[1], truth), abs=0.05)
    copy = __import__("copy").deepcopy(lean)  # cloned from faiss: nothing to rebuild from
    assert torch.equal(copy.search(q, 5)[1], i_lean)
    lean.reset()
    assert lean.ntotal == 0 and lean.search(q, 5)[1].eq(-1).all()


@pytest.mark.parametrize("kwargs,match", [
    ({"spec": "torch", "shards": 2}, "need a faiss index"),
    ({"spec": "torch", "keep_keys": False}, "need a faiss index"),
    ({"spec": "flat", "shards": 0}, "shards must be > 0"),
])
def test_shard_and_key_copy_options_are_checked(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        KeyIndex(32, **kwargs)
