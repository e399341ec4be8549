"""KeyIndex: top-k inner-product search over prompt keys.

Backends:
- ``"torch"``: exact, a matmul + ``topk`` on the keys' device (GPU when the keys live there).
- ``"flat"``: exact inner product. The default. ``faiss.IndexFlatIP`` whenever faiss is
  installed and the keys live on the CPU; the torch path is the fallback (faiss missing,
  warned once; or keys in GPU memory, which faiss-cpu cannot search). Both give the same
  ids up to float32 ties.
- any other string: a faiss ``index_factory`` string (``"HNSW32"``, ``"IVF256,Flat"``...),
  approximate. Indexes that need training (IVF, PQ) train once enough keys were added;
  until then they search exactly and warn once, saying why.

The index is derived state: the pool rebuilds it from its key tensor. faiss is imported
lazily so that importing this module stays cheap.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from cl_prompts.checks import check_positive
from cl_prompts.extras import is_available
from cl_prompts.index.faiss_utils import (
    build_faiss_index,
    clone_faiss_index,
    index_bytes,
    min_training_keys,
    search_params,
    shard_list,
    validate_factory_string,
)

# Query rows per torch chunk are chosen so that one (rows, N) score block stays this small.
_TORCH_BLOCK_ELEMENTS = 1 << 25

_EXACT_SPECS = ("flat", "torch")
_FLAT_BACKENDS = ("auto", "torch", "faiss")


class KeyIndex:
    """Top-k maximum inner-product search over (id, key) pairs.

    Args:
        dim: key width D.
        spec: ``"flat"`` (exact, default), ``"torch"`` (exact, never faiss) or a faiss
            factory string (approximate).
        nprobe: IVF lists visited per query (faiss default 1 when None).
        ef_search: HNSW search breadth (faiss default 16 when None).
        flat_backend: for ``"flat"`` only: ``"auto"`` (faiss when installed and the keys are on
            the CPU, else torch), ``"torch"`` or ``"faiss"`` (always ``IndexFlatIP``).
        shards: faiss only: split the keys over this many indexes searched in parallel
            threads (``faiss.IndexShards``), e.g. one per core or per memory bank.
        keep_keys: keep a float32 copy of every key (4 * D bytes each) beside the faiss
            index: it serves exact search before an index is trained and rebuilds. False:
            the copy is dropped once the faiss index is built, so a compressed index
            (IVF-PQ: a few dozen bytes per key) is all the memory the keys take
            (docs/selection.md, "Large pools"). Not with ``"torch"``; ``"flat"`` then uses faiss.
    """

    def __init__(
        self,
        dim: int,
        spec: str = "flat",
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
        flat_backend: str = "auto",
        shards: int = 1,
        keep_keys: bool = True,
    ) -> None:
        check_positive("dim", dim, integer=True)
        check_positive("nprobe", nprobe, integer=True, allow_none=True)
        check_positive("ef_search", ef_search, integer=True, allow_none=True)
        if not isinstance(spec, str) or not spec.strip():
            raise TypeError(f"index must be a non-empty string, got {spec!r}")
        if flat_backend not in _FLAT_BACKENDS:
            raise ValueError(f"flat_backend must be one of {_FLAT_BACKENDS}, got {flat_backend!r}")
        check_positive("shards", shards, integer=True)
        if not isinstance(keep_keys, bool):
            raise TypeError(f"keep_keys must be a bool, got {keep_keys!r}")
        if spec == "torch" and (shards > 1 or not keep_keys):
            raise ValueError("index 'torch' searches the kept keys themselves: shards and keep_keys=False "
                             "need a faiss index ('flat' or a factory string)")
        if spec == "flat" and (shards > 1 or not keep_keys):
            flat_backend = "faiss"
        if spec not in _EXACT_SPECS:
            validate_factory_string(dim, spec)  # ValueError for unknown strings
        if spec == "flat" and flat_backend == "auto" and not is_available("faiss"):
            warnings.warn("faiss is not installed: index 'flat' searches exactly in torch instead "
                          "(pip install 'cl_prompts[faiss]' for faiss)", UserWarning, stacklevel=2)
        self.dim = dim
        self.spec = spec
        self.nprobe = nprobe
        self.ef_search = ef_search
        self.flat_backend = flat_backend
        self.shards = shards
        self.keep_keys = keep_keys
        self._keys = torch.empty(0, dim)  # (N, D) float32, source for exact search and rebuilds
        self._ids = torch.empty(0, dtype=torch.long)  # (N,)
        self._faiss: Any = None  # built lazily; None while untrained or not needed
        self._warned_untrained = False

    # ------------------------------------------------------------------ state
    @property
    def ntotal(self) -> int:
        """Number of keys added."""
        return int(self._ids.numel())

    def __len__(self) -> int:
        return self.ntotal

    @property
    def is_exact(self) -> bool:
        """True when results equal exact search (flat / torch)."""
        return self.spec in _EXACT_SPECS

    @property
    def is_trained(self) -> bool:
        """False while an index that needs training (IVF, PQ) has too few keys to train."""
        if self.is_exact:
            return True
        return self._faiss is not None or min_training_keys(self.dim, self.spec) == 0

    @property
    def backend(self) -> str:
        """Backend the next search uses: ``"torch"`` or ``"faiss"``."""
        if self.spec == "torch":
            return "torch"
        if self.spec == "flat":
            if self.flat_backend == "auto":  # exact either way
                on_cpu = self._keys.device.type == "cpu"
                return "faiss" if on_cpu and is_available("faiss") else "torch"
            return self.flat_backend
        return "faiss" if self._faiss is not None else "torch"

    def describe(self) -> dict[str, Any]:
        """What searches the keys: ``{"index": spec, "backend": "faiss" | "torch", "keys": N}``."""
        return {"index": self.spec, "backend": self.backend, "keys": self.ntotal}

    def __deepcopy__(self, memo: dict) -> KeyIndex:
        """faiss objects cannot be deep-copied: rebuild the copy from the stored keys."""
        new = KeyIndex(
            self.dim, self.spec, nprobe=self.nprobe, ef_search=self.ef_search,
            flat_backend=self.flat_backend, shards=self.shards, keep_keys=self.keep_keys,
        )
        new._warned_untrained = self._warned_untrained  # do not warn twice for one pool
        if self._faiss is not None and not self.keep_keys:  # no key copy to rebuild from
            new._faiss = clone_faiss_index(self._faiss)
            new._keys, new._ids = self._keys.clone(), self._ids.clone()
        elif self.ntotal:
            new.add(self._keys.clone(), self._ids.clone())
        memo[id(self)] = new
        return new

    def reset(self) -> None:
        """Remove every key."""
        self._keys = torch.empty(0, self.dim)
        self._ids = torch.empty(0, dtype=torch.long)
        self._faiss = None
        self._warned_untrained = False

    def add(self, keys: torch.Tensor, ids: torch.Tensor) -> None:
        """Add keys (N, D) under ids (N,) (``add_with_ids``). Keys are stored as float32.

        Keys keep their device for the torch backend; faiss gets a CPU copy.
        """
        if not isinstance(keys, torch.Tensor) or not isinstance(ids, torch.Tensor):
            raise TypeError("keys and ids must be torch tensors")
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"keys must have shape (N, {self.dim}), got {tuple(keys.shape)}")
        if ids.dim() != 1 or ids.numel() != keys.shape[0]:
            raise ValueError(f"ids must have shape ({keys.shape[0]},), got {tuple(ids.shape)}")
        if ids.dtype != torch.long:
            raise TypeError(f"ids must be int64, got {ids.dtype}")
        if not torch.isfinite(keys).all():
            raise ValueError("keys contain NaN or inf")
        keys = keys.detach().float()
        if self.ntotal:
            keys = keys.to(self._keys.device)
        if self.keep_keys or self._faiss is None:  # without a copy, faiss holds the keys once built
            self._keys = torch.cat([self._keys.to(keys.device), keys])
        self._ids = torch.cat([self._ids.to(keys.device), ids.to(keys.device)])
        if self.spec == "torch" or (self.spec == "flat" and self.backend == "torch"):
            self._faiss = None  # built on demand if the backend switches
            return
        if self._faiss is not None:
            self._faiss.add_with_ids(_np(keys), _np(ids))
        else:
            self._try_build()

    def _try_build(self) -> None:
        needed = min_training_keys(self.dim, self.spec)
        if self.ntotal < needed:
            if not self._warned_untrained:
                warnings.warn(
                    f"index {self.spec!r} needs at least {needed} keys to train, it has "
                    f"{self.ntotal}; searching exactly until it has enough",
                    UserWarning,
                    stacklevel=3,
                )
                self._warned_untrained = True
            return
        self._faiss = build_faiss_index(self.dim, "Flat" if self.spec == "flat" else self.spec, self.shards)
        xb = _np(self._keys)
        if not self._faiss.is_trained:
            self._faiss.train(xb)
        self._faiss.add_with_ids(xb, _np(self._ids))
        if not self.keep_keys:
            self._keys = torch.empty(0, self.dim)

    def memory_bytes(self) -> int:
        """Bytes the keys take: the faiss index (serialised size), the kept float32 copy and the ids."""
        own = self._keys.numel() * 4 + self._ids.numel() * 8
        return own + (index_bytes(self._faiss) if self._faiss is not None else 0)

    # ------------------------------------------------------------------ search
    def search(
        self,
        queries: torch.Tensor,
        k: int,
        id_ranges: list[tuple[int, int]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k inner products.

        Args:
            queries: (B, D) float tensor.
            k: results per query (>= 1).
            id_ranges: optional ``[(start, stop), ...]``: only ids in these half-open
                ranges are eligible (used to restrict selection to some tasks).
        Returns:
            scores (B, k) float32 and ids (B, k) long, on the queries' device, best first.
            Slots without a result (fewer eligible keys than k, or an approximate index
            that found fewer) hold score ``-inf`` and id ``-1``.
        """
        if not isinstance(queries, torch.Tensor):
            raise TypeError(f"queries must be a torch.Tensor, got {type(queries).__name__}")
        if queries.dim() != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must have shape (B, {self.dim}), got {tuple(queries.shape)}")
        check_positive("k", k, integer=True)
        device = queries.device
        b = queries.shape[0]
        if self.ntotal == 0 or b == 0:
            return (
                torch.full((b, k), float("-inf"), device=device),
                torch.full((b, k), -1, dtype=torch.long, device=device),
            )
        if self.backend == "torch":
            scores, ids = self._search_torch(queries.detach().float(), k, id_ranges)
        else:
            if self._faiss is None:
                self._try_build()
            scores, ids = self._search_faiss(queries, k, id_ranges)
        return scores.to(device), ids.to(device)

    def _search_torch(
        self, q: torch.Tensor, k: int, id_ranges: list[tuple[int, int]] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keys, ids = self._keys, self._ids
        q = q.to(keys.device)
        if id_ranges is not None:
            mask = _range_mask(ids, id_ranges)
            keys, ids = keys[mask], ids[mask]
        n = keys.shape[0]
        kk = min(k, n)
        b = q.shape[0]
        rows = max(1, _TORCH_BLOCK_ELEMENTS // max(n, 1))
        if kk == k and rows >= b:  # common case: one block, no padding (least overhead)
            s, j = torch.topk(q @ keys.T, k, dim=1)  # (B, k)
            return s, ids[j]
        out_s = torch.full((b, k), float("-inf"), device=keys.device)
        out_i = torch.full((b, k), -1, dtype=torch.long, device=keys.device)
        if kk == 0:
            return out_s, out_i
        for start in range(0, b, rows):  # chunk queries so the score block stays bounded
            block = q[start : start + rows] @ keys.T  # (rows, N)
            s, j = torch.topk(block, kk, dim=1)
            out_s[start : start + rows, :kk] = s
            out_i[start : start + rows, :kk] = ids[j]
        return out_s, out_i

    def _search_faiss(
        self, q: torch.Tensor, k: int, id_ranges: list[tuple[int, int]] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self._faiss is None:  # still untrained: exact fallback (warned in _try_build)
            return self._search_torch(q.detach().float(), k, id_ranges)
        xq = _np(q.detach().float())
        # faiss's threaded IndexShards shares one SearchParameters between its threads, and
        # IndexIDMap rewrites its selector while searching (wrong ids, crashes): a search
        # restricted to id ranges asks each shard in turn and merges.
        parts = shard_list(self._faiss) if id_ranges is not None else [self._faiss]
        found = []
        for part in parts:
            params, keep_alive = search_params(part, id_ranges, self.nprobe, self.ef_search)
            dist, lab = part.search(xq, k, params=params)
            del keep_alive  # selectors must outlive the search call only
            found.append((torch.from_numpy(dist), torch.from_numpy(lab).long()))
        scores, ids = (torch.cat(t, dim=1) for t in zip(*found, strict=True))  # (B, k * parts)
        scores[ids < 0] = float("-inf")
        if len(parts) > 1:
            scores, best = torch.topk(scores, k, dim=1)
            ids = ids.gather(1, best)
        return scores, ids


def _np(t: torch.Tensor) -> np.ndarray:
    """Contiguous CPU numpy view (float32 / int64) for faiss."""
    return np.ascontiguousarray(t.detach().cpu().numpy())


def _range_mask(ids: torch.Tensor, id_ranges: list[tuple[int, int]]) -> torch.Tensor:
    mask = torch.zeros_like(ids, dtype=torch.bool)
    for start, stop in id_ranges:
        mask |= (ids >= start) & (ids < stop)
    return mask
