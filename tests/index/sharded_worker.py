"""One rank of tests/index/test_sharded.py: ``python sharded_worker.py RANK WORLD FOLDER``.

Reads FOLDER/data.pt (keys, ids, queries), adds its half of the keys to a RankShardedKeyIndex,
runs the collective searches and saves them to FOLDER/rank{RANK}.pt.
"""

import sys

import torch
import torch.distributed as dist

from cl_prompts.index import RankShardedKeyIndex

K = 5


def main(rank: int, world: int, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=world)
    try:
        data = torch.load(f"{folder}/data.pt")
        keys, ids, queries = data["keys"], data["ids"], data["queries"]
        n = len(ids)
        index = RankShardedKeyIndex(keys.shape[1], "flat")
        part = slice(0, 150) if rank == 0 else slice(150, n)  # each rank holds different keys
        index.add_from_ranks(keys[part], ids[part])
        ntotal = index.ntotal
        replicated = RankShardedKeyIndex(keys.shape[1], "flat")
        replicated.add(keys, ids)  # every rank holds every key
        mine = queries[:10] if rank == 0 else queries[10:]  # unequal query counts
        errors = []
        for bad in (ids.int(), -ids - 1):  # int32 ids; negative ids
            try:
                index.add(keys, bad)
            except (TypeError, ValueError) as exc:
                errors.append(type(exc).__name__)
        result = {"ntotal": ntotal, "errors": errors, "local_ids": index.local._ids.clone(),
                  "search": index.search(mine, K),
                  "ranged": index.search(mine, K, id_ranges=[(1000, 1050)]),
                  "too_many": index.search(mine[:1], n + 3),
                  "none": index.search(mine[:0], K),
                  "replicated_ids": replicated.local._ids.clone(), "replicated": replicated.search(mine, K)}
        torch.save(result, f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
