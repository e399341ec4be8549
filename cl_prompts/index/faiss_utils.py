"""Small helpers around faiss (imported lazily, inside functions only)."""

from __future__ import annotations

import functools
from typing import Any


def faiss_module() -> Any:
    """Import faiss on first use so ``import cl_prompts`` never pays for it."""
    import faiss

    return faiss


@functools.lru_cache(maxsize=64)
def validate_factory_string(dim: int, spec: str) -> None:
    """Raise ValueError naming the string when faiss cannot parse it."""
    faiss = faiss_module()
    try:
        faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as err:
        msg = str(err).strip().splitlines()[-1].split(": ")[-1] if str(err).strip() else ""
        raise ValueError(
            f"index must be 'flat', 'torch' or a faiss index_factory string "
            f"(e.g. 'HNSW32', 'IVF256,Flat'), got {spec!r}: {msg}"
        ) from None


def build_faiss_index(dim: int, spec: str) -> Any:
    """An inner-product faiss index from a factory string, wrapped so it takes our ids."""
    faiss = faiss_module()
    inner = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    # faiss's python wrapper keeps `inner` referenced by the IDMap (referenced_objects)
    return faiss.IndexIDMap2(inner)


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
    inner = faiss.downcast_index(index.index)
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
