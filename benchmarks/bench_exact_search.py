"""Exact key search on a device: KeyIndex ``"torch"`` (matmul + topk) with the keys on ``--device``.

Median milliseconds per batch of 256 queries, top-5, for pools of ``--sizes`` keys at widths
384 and 768, and the keys' memory. Keys and queries are random unit vectors: exact search
costs the same whatever their values. On a GPU this is the large-pool path when faiss has no
GPU support (the faiss-cpu wheel): the keys stay in GPU memory and every query is compared
with all of them.

    .venv/bin/python benchmarks/bench_exact_search.py                                  # this CPU
    python3 benchmarks/bench_exact_search.py --device cuda --sizes 10000 100000 1000000 10000000
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from provenance import provenance, write_json

from cl_prompts.index import KeyIndex

ROOT = Path(__file__).resolve().parents[1]


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"


def time_search(index: KeyIndex, queries: torch.Tensor, k: int, repeats: int) -> float:
    """Median wall milliseconds of one search of ``queries`` (B, D), after one warm-up."""
    sync = torch.cuda.synchronize if queries.is_cuda else (lambda: None)
    index.search(queries, k)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        index.search(queries, k)
        sync()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--widths", type=int, nargs="+", default=[384, 768])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "exact_search.json"))
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    gen = torch.Generator(device=device).manual_seed(0)
    rows = []
    for d in args.widths:
        queries = torch.nn.functional.normalize(torch.randn(args.batch, d, device=device, generator=gen), dim=1)
        for n in args.sizes:
            keys = torch.nn.functional.normalize(torch.randn(n, d, device=device, generator=gen), dim=1)
            index = KeyIndex(d, "torch")
            index.add(keys, torch.arange(n, device=device))
            del keys
            ms = time_search(index, queries, args.k, args.repeats)
            rows.append({"keys": n, "width": d, "ms_per_batch": round(ms, 3),
                         "queries_per_s": round(1000 * args.batch / ms), "key_gib": round(n * d * 4 / 2**30, 3)})
            print(f"[exact] {n:>10,} keys x {d}: {ms:8.2f} ms / {args.batch} queries", flush=True)
            del index
            if device.type == "cuda":
                torch.cuda.empty_cache()
    doc = {"device": device_name(device), "torch": torch.__version__, "batch": args.batch, "k": args.k,
           "repeats": args.repeats, "rows": rows, **provenance("bench_exact_search", argv, device=args.device)}
    write_json(args.out, doc)
    return doc


if __name__ == "__main__":
    main()
