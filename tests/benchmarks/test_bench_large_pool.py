"""benchmarks/bench_large_pool.py at toy sizes: the large row against exact search, the limit table."""

from __future__ import annotations

import json

import pytest


def test_bench_large_pool_rows_and_limit_table(tmp_path, monkeypatch, benchmark_script):
    faiss = pytest.importorskip("faiss")
    faiss.omp_set_num_threads(1)
    module = benchmark_script("bench_large_pool")
    monkeypatch.setattr(module, "TABLE_KINDS", {32: {"flat": ("flat", {}), "IVF4,PQ4x4 lean": ("IVF4,PQ4x4", {"keep_keys": False})}})
    real_data = module.data
    monkeypatch.setattr(module, "data", lambda kind, n, width, seed: real_data(kind, n, 32, seed))
    out = tmp_path / "large.json"
    # PQ4x4 (16 centroids per codebook), not PQ4 (256): faiss trains 8-bit IVF-PQ codes for
    # polysemous search as well, seconds per index even at width 32
    doc = module.main(["--keys", "uniform", "--keys-1m", "2000", "--nlist", "8", "--codes", "PQ4x4", "SQ8", "--shards", "2",
                       "--nprobes", "8", "2", "--table-keys", "500", "--out", str(out)])
    assert json.loads(out.read_text()) == doc
    rows = doc["large"]
    assert rows[0]["index"] == "torch (exact)" and rows[0]["recall@5"] == 1.0
    assert len(rows) == 1 + 2 * 2 + 2  # PQ4x4 in one and two shards, SQ8 in one; two nprobe each
    by_name = {r["index"]: r for r in rows}
    # nprobe = nlist visits every list: only the PQ's loss of precision is left
    assert by_name["IVF8,PQ4x4, nprobe 8, 2 shard(s), no key copy"]["recall@5"] >= \
        by_name["IVF8,PQ4x4, nprobe 2, 2 shard(s), no key copy"]["recall@5"]
    assert all(r["memory_mb"] < rows[0]["memory_mb"] for r in rows[1:])  # codes, no float copy
    table = {r["index"]: r for r in doc["limits"]}
    # twice the float key and its id: faiss's IndexIDMap(IndexFlatIP) and the kept copy (searched
    # in torch if the keys move to a GPU)
    assert table["flat"]["bytes_per_key"] == pytest.approx(2 * (4 * 32 + 8))
    assert table["IVF4,PQ4x4 lean"]["bytes_per_key"] < 40  # 2 code bytes and 16 bytes of ids (map and index)
    assert table["flat"]["keys_per_gb"] == int(2**30 / table["flat"]["bytes_per_key"])
