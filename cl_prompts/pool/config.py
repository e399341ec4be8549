"""PoolConfig: every setting of a PromptPool, validated and JSON-serialisable."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from cl_prompts.checks import is_int, is_number

_PROMPT_INITS = ("uniform", "normal")
_FLAT_BACKENDS = ("auto", "torch", "faiss")
# Fields that fix tensor shapes: a saved pool refuses to load under other values.
STRUCTURAL_FIELDS = ("embed_dim", "prompt_length")


def _positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")


@dataclass
class PoolConfig:
    """Configuration of a :class:`PromptPool`.

    Attributes:
        embed_dim: D, width of prompts, keys and queries (read it from the backbone).
        prompt_length: L, tokens per prompt.
        top_k: prompts chosen per input when ``select`` gets no ``k``.
        index: ``"flat"`` (exact, default), ``"torch"`` (exact, no faiss) or a faiss
            factory string such as ``"HNSW32"`` / ``"IVF256,Flat"`` (approximate).
        nprobe: IVF lists searched per query (faiss default when None).
        ef_search: HNSW search breadth (faiss default when None).
        flat_backend: ``"auto"`` | ``"torch"`` | ``"faiss"``: who runs exact ``"flat"`` search.
        frequency_penalty: >= 0. While training, the score of each prompt is lowered by
            ``frequency_penalty * f`` where ``f`` is its share of all selections made while
            training the earlier tasks (L2P's diversified selection). 0 disables it.
        prompt_init: ``"uniform"`` (U(-s, s), as L2P) or ``"normal"`` (N(0, s)) for new prompts
            and keys, ``s = init_scale``.
        init_scale: s above (> 0).
    """

    embed_dim: int
    prompt_length: int = 5
    top_k: int = 5
    index: str = "flat"
    nprobe: int | None = None
    ef_search: int | None = None
    flat_backend: str = "auto"
    frequency_penalty: float = 0.0
    prompt_init: str = "uniform"
    init_scale: float = 1.0

    def __post_init__(self) -> None:
        _positive_int("embed_dim", self.embed_dim)
        _positive_int("prompt_length", self.prompt_length)
        _positive_int("top_k", self.top_k)
        _positive_int("nprobe", self.nprobe, allow_none=True)
        _positive_int("ef_search", self.ef_search, allow_none=True)
        if not isinstance(self.index, str) or not self.index.strip():
            raise TypeError(f"index must be a non-empty string, got {self.index!r}")
        if self.flat_backend not in _FLAT_BACKENDS:
            raise ValueError(
                f"flat_backend must be one of {_FLAT_BACKENDS}, got {self.flat_backend!r}"
            )
        if self.prompt_init not in _PROMPT_INITS:
            raise ValueError(f"prompt_init must be one of {_PROMPT_INITS}, got {self.prompt_init!r}")
        for name in ("frequency_penalty", "init_scale"):
            value = getattr(self, name)
            if not is_number(value):
                raise TypeError(f"{name} must be a float, got {type(value).__name__}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value}")
        if self.frequency_penalty < 0:
            raise ValueError(f"frequency_penalty must be >= 0, got {self.frequency_penalty}")
        if self.init_scale <= 0:
            raise ValueError(f"init_scale must be > 0, got {self.init_scale}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (``dataclasses.asdict``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoolConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        if not isinstance(data, dict):
            raise TypeError(f"config must be a dict, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PoolConfig fields {unknown}; known: {sorted(known)}")
        return cls(**data)
