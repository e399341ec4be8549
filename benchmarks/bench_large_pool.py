"""Large pools: a 1M-key row (IVF with compressed codes against exact search) and the
limit table (bytes per key, keys per GB) of the KeyIndex kinds at widths 384 and 768.

1M-key row: keys as in bench_selection.py (MiniLM-L6 embeddings of CLINC150 train
utterances, then a Gaussian mixture around them; ``--keys uniform``: random unit vectors,
the worst case), queries = CLINC150 test embeddings in batches of 256, top-5. Exact search
is the KeyIndex ``"torch"`` path (chunked matmul + topk over every key); the approximate
ones ``IVF<nlist>,<code>`` KeyIndexes without the float key copy (``keep_keys=False``), one
per ``--codes`` (the first also in ``--shards`` shards), at several nprobe: recall@5
against exact, median query time per batch, build (train + add) time, and memory.

Limit table: each kind built on ``--table-keys`` keys per width, then as many again; bytes
per key = the growth of the KeyIndex's ``memory_bytes()`` (serialised faiss index + kept
copy + ids) over the added keys (the trained centroids and codebooks are a fixed cost,
reported apart), and keys per GB = 2**30 / that. HNSW is in the table only (building it
on 1M keys takes tens of minutes on this 2-core CPU).

    .venv/bin/python benchmarks/bench_large_pool.py                      # 1M keys + table (~15 min on an idle 2-core CPU)
    .venv/bin/python benchmarks/bench_large_pool.py --keys-1m 200000 --table-keys 5000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from bench_selection import clinc_embeddings, make_keys, recall, time_ms, widen
from provenance import provenance, write_json

from cl_prompts.index import KeyIndex

ROOT = Path(__file__).resolve().parents[1]
BATCH, K = 256, 5
TABLE_KINDS = {  # name -> (spec, KeyIndex options), per width
    384: {"flat (faiss, default)": ("flat", {}), "HNSW32": ("HNSW32", {}),
          "IVF256,PQ48, no key copy": ("IVF256,PQ48", {"keep_keys": False}),
          "IVF256,PQ48 + key copy": ("IVF256,PQ48", {})},
    768: {"flat (faiss, default)": ("flat", {}), "HNSW32": ("HNSW32", {}),
          "IVF256,PQ96, no key copy": ("IVF256,PQ96", {"keep_keys": False}),
          "IVF256,PQ96 + key copy": ("IVF256,PQ96", {})},
}


def data(kind: str, n: int, width: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        base, test = torch.randn(1000, width, generator=gen), torch.randn(BATCH, width, generator=gen)
    else:
        train, test = clinc_embeddings()
        base, test = widen(train, width, gen), widen(test[:BATCH], width, gen)
    return make_keys(kind, n, base, gen), test[:BATCH].contiguous()


def build(keys: torch.Tensor, spec: str, **options: Any) -> tuple[KeyIndex, float]:
    index = KeyIndex(keys.shape[1], spec, **options)
    start = time.perf_counter()
    for chunk in range(0, len(keys), 200_000):  # as a pool grows: several adds
        index.add(keys[chunk : chunk + 200_000], torch.arange(chunk, min(chunk + 200_000, len(keys))))
    return index, time.perf_counter() - start


def million_row(kind: str, n: int, nlist: int, codes: list[str], shards: int, nprobes: list[int],
                seed: int) -> list[dict]:
    keys, queries = data(kind, n, 384, seed)
    exact, exact_build = build(keys, "torch")
    truth = exact.search(queries, K)[1]
    exact_ms, _ = time_ms(lambda: exact.search(queries, K), 3)  # noqa: F821 (freed below, after this call)
    rows = [{"index": "torch (exact)", "keys": n, "recall@5": 1.0, "query_ms_per_256": round(exact_ms, 1),
             "build_s": round(exact_build, 2), "memory_mb": round(exact.memory_bytes() / 2**20, 1)}]
    print(f"[1M] exact: {exact_ms:.0f} ms per batch of {BATCH}", flush=True)
    del exact
    for c, code in enumerate(codes):
        spec = f"IVF{nlist},{code}"
        for parts in sorted({1, shards}) if c == 0 else [1]:  # shards: the first code only (build time)
            index, seconds = build(keys, spec, keep_keys=False, shards=parts)
            for nprobe in nprobes:
                index.nprobe = nprobe
                ms, _ = time_ms(lambda index=index: index.search(queries, K), 3)
                rows.append({"index": f"{spec}, nprobe {nprobe}, {parts} shard(s), no key copy", "keys": n,
                             "recall@5": round(recall(index.search(queries, K)[1], truth), 4),
                             "query_ms_per_256": round(ms, 1), "build_s": round(seconds, 1),
                             "memory_mb": round(index.memory_bytes() / 2**20, 1)})
                print(f"[1M] {rows[-1]}", flush=True)
            del index
    return rows


def limit_table(kind: str, n: int, seed: int) -> list[dict]:
    """Bytes per key as the pool grows: memory after 2n keys minus after n, over n (the
    trained parts, centroids and codebooks, are a fixed cost reported apart)."""
    rows = []
    for width, kinds in TABLE_KINDS.items():
        keys, _ = data(kind, 2 * n, width, seed)
        for name, (spec, options) in kinds.items():
            index, _ = build(keys[:n], spec, **options)
            first = index.memory_bytes()
            index.add(keys[n:], torch.arange(n, 2 * n))
            per_key = (index.memory_bytes() - first) / n
            rows.append({"width": width, "index": name, "bytes_per_key": round(per_key, 1),
                         "fixed_mb": round((first - per_key * n) / 2**20, 2), "keys_per_gb": int(2**30 / per_key)})
            print(f"[table] {rows[-1]}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", default="real", choices=["real", "uniform"])
    ap.add_argument("--keys-1m", type=int, default=1_000_000, help="keys of the large row (0: skip it)")
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--codes", nargs="+", default=["PQ48", "SQ8"],
                    help="faiss encodings of the large row: PQ48 = 48 bytes a key, SQ8 = one byte a dimension")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--nprobes", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--table-keys", type=int, default=20_000, help="keys per limit-table step (0: skip it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "large_pool.json"))
    args = ap.parse_args(argv)
    doc: dict[str, Any] = {
        **provenance("bench_large_pool", argv),
        "keys": args.keys, "batch": BATCH, "k": K,
    }
    if args.keys_1m:
        doc["large"] = million_row(args.keys, args.keys_1m, args.nlist, args.codes, args.shards, args.nprobes,
                                   args.seed)
    if args.table_keys:
        doc["limits"] = limit_table(args.keys, args.table_keys, args.seed)
    write_json(args.out, doc)
    for rows in (doc.get("large", []), doc.get("limits", [])):
        if rows:
            print(f"\n| {' | '.join(rows[0])} |\n|{'---|' * len(rows[0])}")
            for r in rows:
                print(f"| {' | '.join(str(v) for v in r.values())} |")
    print(f"written: {args.out}")
    return doc


if __name__ == "__main__":
    main()
