"""Keys and queries in two dimensions (PCA), to see whether the keys separate the experiences."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cl_prompts.analysis.routing import RoutingRecord
from cl_prompts.random_state import isolated_rng


@torch.no_grad()
def key_map(model, record: RoutingRecord, *, max_queries: int | None = 2000, seed: int = 0
            ) -> dict[str, np.ndarray]:
    """Project the method's keys and the record's queries onto their first two principal axes.

    Keys and queries are matched by cosine, so both are put at unit length first; the axes
    are fitted on the queries (at most ``max_queries``, drawn with ``seed``) and the keys
    together. Returns ``keys`` (K, 2), ``key_experience`` (K,) (-1: shared), ``queries``
    (Q, 2), ``query_experience`` (Q,), ``query_labels`` (Q,) and ``explained`` (2,), the
    share of the variance each axis holds.
    """
    found = model.routing_keys()
    if found is None:
        raise ValueError(f"method {model.name!r} has no keys to map")
    if record.queries is None:
        raise ValueError("the record holds no queries: collect_routing(..., keep_queries=True)")
    keys, key_experience = found  # (K, W), (K,)
    queries = record.queries
    if keys.shape[1] != queries.shape[1]:
        raise ValueError(f"keys are {keys.shape[1]} wide but the queries {queries.shape[1]}: "
                         "collect the record with the same model")
    rng = np.random.default_rng(seed)
    pick = np.arange(len(queries))
    if max_queries is not None and len(pick) > max_queries:
        pick = np.sort(rng.choice(len(pick), size=max_queries, replace=False))
    q = F.normalize(torch.as_tensor(queries[pick], dtype=torch.float32), dim=1)  # (Q, W)
    k = F.normalize(keys.detach().float().cpu(), dim=1)  # (K, W)
    both = torch.cat([q, k])
    mean = both.mean(dim=0, keepdim=True)
    with isolated_rng():  # pca_lowrank draws a random start: keep the caller's RNG untouched
        torch.manual_seed(seed)
        _, s, v = torch.pca_lowrank(both - mean, q=min(6, *both.shape), center=False, niter=6)
    axes = v[:, :2]  # (W, 2)
    total = (both - mean).pow(2).sum()
    return {
        "keys": ((k - mean) @ axes).numpy(),
        "key_experience": key_experience.cpu().numpy(),
        "queries": ((q - mean) @ axes).numpy(),
        "query_experience": record.experience[pick],
        "query_labels": record.labels[pick],
        "explained": (s[:2].pow(2) / total).numpy(),
    }
