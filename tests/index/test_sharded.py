"""RankShardedKeyIndex: keys split over two gloo processes search as one KeyIndex holding them all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from cl_prompts.index import KeyIndex, RankShardedKeyIndex

DIM, N, K = 16, 200, 5
WORKER = Path(__file__).with_name("sharded_worker.py")  # one rank: builds, searches, saves its results


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(N, DIM, generator=g)
    queries = torch.randn(13, DIM, generator=g)
    ids = torch.randperm(N, generator=g) + 1000  # ids unrelated to the row order
    return keys, ids, queries


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("sharded")
    torch.save(dict(zip(("keys", "ids", "queries"), _data(), strict=True)), tmp / "data.pt")
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(r), "2", str(tmp)]) for r in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0], "a rank failed (its traceback is above)"
    return [torch.load(tmp / f"rank{r}.pt") for r in range(2)]


def test_each_rank_holds_the_ids_it_owns_and_ntotal_counts_all(ranks):
    assert [r["ntotal"] for r in ranks] == [N, N]
    for rank, r in enumerate(ranks):
        for held in (r["local_ids"], r["replicated_ids"]):
            assert sorted(held.tolist()) == sorted(i for i in _data()[1].tolist() if i % 2 == rank)


def test_a_collective_search_equals_one_index_holding_every_key(ranks):
    keys, ids, queries = _data()
    single = KeyIndex(DIM, "flat")
    single.add(keys, ids)
    for r, mine in zip(ranks, (queries[:10], queries[10:]), strict=True):
        for name, kwargs, q in (("search", {}, mine), ("ranged", {"id_ranges": [(1000, 1050)]}, mine),
                                ("replicated", {}, mine)):
            want_s, want_i = single.search(q, K, **kwargs)
            got_s, got_i = r[name]
            assert torch.equal(got_i, want_i), name
            torch.testing.assert_close(got_s, want_s)


def test_more_results_than_keys_pad_and_an_empty_batch_is_served(ranks):
    for r in ranks:
        scores, ids = r["too_many"]
        assert scores.shape == (1, N + 3)
        assert int((ids >= 0).sum()) == N and bool((ids[0, N:] == -1).all())
        assert bool(torch.isinf(scores[0, N:]).all())
        none_s, none_i = r["none"]
        assert none_s.shape == (0, K) and none_i.shape == (0, K)


def test_bad_ids_are_refused_by_name(ranks):
    assert [r["errors"] for r in ranks] == [["TypeError", "ValueError"]] * 2


def test_without_a_process_group_it_refuses_and_names_keyindex():
    if dist.is_initialized():
        pytest.skip("a process group is open in this process")
    with pytest.raises(RuntimeError, match="KeyIndex"):
        RankShardedKeyIndex(DIM)
