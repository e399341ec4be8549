"""Small helpers around faiss (imported lazily, inside functions only)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from typing import Any


def faiss_module() -> Any:
    """Import faiss on first use so ``import cl_prompts`` never pays for it."""
    from cl_prompts.extras import require

    return require("faiss", "a faiss index")


# Builds, trains, fills and searches a small index the way KeyIndex does. Run in a child
# process: some factory strings that faiss parses (e.g. "HNSW0", "IVF4_HNSW0,Flat") abort
# the process (SIGABRT) on their first add, which no try/except can catch.
_TRIAL = """
import sys, faiss, numpy as np
dim, spec, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
index = faiss.IndexIDMap2(faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT))
keys = np.random.default_rng(0).standard_normal((n, dim)).astype("float32")
keys /= np.linalg.norm(keys, axis=1, keepdims=True)
if not index.is_trained:
    index.train(keys)
index.add_with_ids(keys, np.arange(n, dtype="int64"))
inner = faiss.downcast_index(index.index)
if isinstance(inner, faiss.IndexHNSW):
    params = faiss.SearchParametersHNSW()
else:
    try:
        faiss.extract_index_ivf(inner)
        params = faiss.SearchParametersIVF()
    except RuntimeError:
        params = faiss.SearchParameters()
params.sel = faiss.IDSelectorRange(0, n)
index.search(keys[:2], 2, params=params)
"""


# Keys a trial index may train on (IVF: one per list at least), and its time limit.
MAX_TRIAL_KEYS = 1 << 16
TRIAL_SECONDS = 120


@functools.lru_cache(maxsize=64)
def validate_factory_string(dim: int, spec: str) -> None:
    """Raise ValueError naming the string when faiss cannot parse it or a small index of it fails.

    The trial build runs in a child process (about half a second, once per string and width).
    """
    faiss = faiss_module()
    hint = "index must be 'flat', 'torch' or a faiss index_factory string (e.g. 'HNSW32', 'IVF256,Flat')"
    try:
        faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as err:
        msg = str(err).strip().splitlines()[-1].split(": ")[-1] if str(err).strip() else ""
        raise ValueError(f"{hint}, got {spec!r}: {msg}") from None
    if spec.replace(" ", "").upper().startswith("IDMAP"):
        raise ValueError(f"{hint}, got {spec!r}: the index maps ids itself; drop the IDMap prefix "
                         f"(e.g. {spec.split(',', 1)[-1]!r})")
    keys = max(64, min_training_keys(dim, spec))
    if keys > MAX_TRIAL_KEYS:  # e.g. "IVF1000000,Flat": a million k-means lists, minutes to train
        raise ValueError(f"{hint}, got {spec!r}: it needs {keys} keys to train; index strings "
                         f"that train on at most {MAX_TRIAL_KEYS} keys are accepted")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-c", _TRIAL, str(dim), spec, str(keys)], env=env,
                              capture_output=True, text=True, timeout=TRIAL_SECONDS)
    except subprocess.TimeoutExpired:
        raise ValueError(f"{hint}, got {spec!r}: a small index of it took more than {TRIAL_SECONDS} s "
                         "to build") from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        if done.returncode < 0:
            reason = f"faiss aborted the process (signal {-done.returncode})"
            reason += f": {lines[-1].strip()}" if lines else ""
        else:
            reason = lines[-1].split(": ")[-1] if lines else f"exit status {done.returncode}"
        raise ValueError(f"{hint}, got {spec!r}: a small index of it fails ({reason})")


def build_faiss_index(dim: int, spec: str, shards: int = 1) -> Any:
    """An inner-product faiss index from a factory string, wrapped so it takes our ids.

    shards > 1: a ``faiss.IndexShards`` of that many such indexes, searched in parallel
    threads and merged (each key lives in one shard; every shard trains on the same keys).
    """
    faiss = faiss_module()
    if shards > 1:
        index = faiss.IndexShards(dim, True, False)  # threaded, ids given by the caller
        subs = [build_faiss_index(dim, spec) for _ in range(shards)]
        for sub in subs:
            index.add_shard(sub)
        index.referenced_objects = subs  # the shards live as long as the index
        return index
    inner = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    # faiss's python wrapper keeps `inner` referenced by the IDMap (referenced_objects)
    return faiss.IndexIDMap2(inner)


def shard_list(index: Any) -> list[Any]:
    """The IDMap indexes of ``index`` (its shards, or itself)."""
    faiss = faiss_module()
    if isinstance(index, faiss.IndexShards):
        return [faiss.downcast_index(index.at(i)) for i in range(index.count())]
    return [index]


def clone_faiss_index(index: Any) -> Any:
    """A deep copy (faiss cannot clone an IndexShards as a whole: each shard is cloned)."""
    faiss = faiss_module()
    if not isinstance(index, faiss.IndexShards):
        return faiss.clone_index(index)
    copy = faiss.IndexShards(index.d, True, False)
    subs = [faiss.clone_index(sub) for sub in shard_list(index)]
    for sub in subs:
        copy.add_shard(sub)
    copy.referenced_objects = subs
    return copy


def index_bytes(index: Any) -> int:
    """Bytes of the index's serialised form (codes, links, centroids and ids): its memory, roughly."""
    faiss = faiss_module()
    return sum(len(faiss.serialize_index(sub)) for sub in shard_list(index))


@functools.lru_cache(maxsize=64)
def min_training_keys(dim: int, spec: str) -> int:
    """Keys an index needs before it can train (0 when it needs no training).

    IVF needs at least one key per list (k-means); PQ needs ``2**nbits`` keys per
    sub-quantizer codebook. faiss warns (but works) below 39 keys per centroid.
    """
    if spec in ("flat", "torch"):
        return 0
    faiss = faiss_module()
    index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    if index.is_trained:
        return 0
    need = 1
    try:
        ivf = faiss.extract_index_ivf(index)
        need = max(need, int(ivf.nlist))
        quant = faiss.downcast_index(ivf)
    except RuntimeError:
        quant = faiss.downcast_index(index)
    pq = getattr(quant, "pq", None)
    if pq is not None:
        need = max(need, int(pq.ksub))
    return max(need, 2)


def search_params(
    index: Any,
    id_ranges: list[tuple[int, int]] | None,
    nprobe: int | None,
    ef_search: int | None,
) -> tuple[Any, list[Any]]:
    """SearchParameters with an id selector and the index's search knobs.

    Returns the parameters and a list of objects that must stay alive during search
    (faiss holds raw pointers to selectors).
    """
    faiss = faiss_module()
    inner = faiss.downcast_index(shard_list(index)[0].index)  # every shard has the same type
    keep: list[Any] = []
    if isinstance(inner, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW()
        if ef_search is not None:
            params.efSearch = ef_search
    else:
        try:
            faiss.extract_index_ivf(inner)
            params = faiss.SearchParametersIVF()
            if nprobe is not None:
                params.nprobe = nprobe
        except RuntimeError:
            params = faiss.SearchParameters()
    if id_ranges is not None:
        sel = None
        for start, stop in id_ranges:
            rng = faiss.IDSelectorRange(int(start), int(stop))
            keep.append(rng)
            sel = rng if sel is None else faiss.IDSelectorOr(sel, rng)
            keep.append(sel)
        if sel is None:  # no eligible id at all
            sel = faiss.IDSelectorRange(0, 0)
            keep.append(sel)
        params.sel = sel
    keep.append(params)
    return params, keep
