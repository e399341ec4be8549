"""A key pool split over processes (RankShardedKeyIndex): memory per rank and collective search time.

Launch with torchrun; each rank creates only the keys it owns (ids rank, rank + W, ...: random
unit vectors, the worst case for approximate indexes) and every rank searches its own batch of
queries, top-5. Reported by rank 0: keys per rank, each rank's key memory, the median time of
one collective search (all ranks' batches answered) and the result's agreement with exact
search over every key (recall@5; 1.0 for the exact specs).

    .venv/bin/torchrun --nproc-per-node 1 benchmarks/bench_sharded_search.py --out benchmarks/results/sharded_search-1.json
    .venv/bin/torchrun --nproc-per-node 2 benchmarks/bench_sharded_search.py --out benchmarks/results/sharded_search-2.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.distributed as dist
from provenance import provenance, write_json

from cl_prompts.index import KeyIndex, RankShardedKeyIndex

ROOT = Path(__file__).resolve().parents[1]


def owned_keys(n: int, dim: int, rank: int, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The keys of ids rank, rank + world, ...: blocks of ids get their keys from one seed
    each and every rank keeps its own rows, so any world size builds the same pool."""
    block = 65536
    keys, ids = [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        rows = torch.randn(stop - start, dim, generator=torch.Generator().manual_seed(start))
        mine = torch.arange(start, stop) % world == rank
        keys.append(rows[mine])
        ids.append(torch.arange(start, stop)[mine])
    return torch.nn.functional.normalize(torch.cat(keys), dim=1), torch.cat(ids)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--spec", default="flat")
    ap.add_argument("--batch", type=int, default=256, help="queries per rank per search")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sharded_search.json"))
    args = ap.parse_args(argv)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(max(1, torch.get_num_threads() // world) if world > 1 else torch.get_num_threads())
    index = RankShardedKeyIndex(args.dim, args.spec)
    keys, ids = owned_keys(args.keys, args.dim, rank, world)
    index.add(keys, ids)  # every id here is this rank's own
    del keys
    queries = torch.nn.functional.normalize(torch.randn(args.batch, args.dim,
                                                        generator=torch.Generator().manual_seed(1000 + rank)), dim=1)
    index.search(queries, 5)  # warm-up
    times = []
    for _ in range(args.repeats):
        dist.barrier()
        start = time.perf_counter()
        scores, found = index.search(queries, 5)
        times.append(1000 * (time.perf_counter() - start))
    memory = torch.tensor([index.memory_bytes()], dtype=torch.long)
    per_rank = [torch.zeros(1, dtype=torch.long) for _ in range(world)]
    dist.all_gather(per_rank, memory)
    if rank == 0:  # exact check on a sample of rank 0's queries, against keys rebuilt whole
        exact = KeyIndex(args.dim, "torch")
        for r in range(world):
            k, i = owned_keys(args.keys, args.dim, r, world)
            exact.add(k, i)
        _, want = exact.search(queries[:32], 5)
        recall = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found[:32], want, strict=True)) / want.numel()
        doc = {"processes": world, "keys": args.keys, "dim": args.dim, "spec": args.spec,
               "batch_per_rank": args.batch, "keys_per_rank": args.keys // world,
               "memory_mib_per_rank": [round(int(m) / 2**20, 1) for m in per_rank],
               "ms_per_collective_search": round(statistics.median(times), 2),
               "queries_per_s": round(1000 * world * args.batch / statistics.median(times)),
               "recall_at_5": recall, "threads_per_rank": torch.get_num_threads(),
               **provenance("bench_sharded_search", argv)}
        # launched by torchrun, not python
        doc["command"] = doc["command"].replace("python", f"torchrun --nproc-per-node {world}", 1)
        print(json.dumps(doc))
        write_json(args.out, doc)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
