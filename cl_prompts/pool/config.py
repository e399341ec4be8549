"""PoolConfig: every setting of a PromptPool, validated and JSON-serialisable."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cl_prompts.checks import check_choice, check_positive

PROMPT_INITS = ("uniform", "normal")
# "jax_uniform": U[0, 0.01), the key initialisation of the official JAX L2P / DualPrompt code
KEY_INITS = ("as_prompts", "jax_uniform")
_FLAT_BACKENDS = ("auto", "torch", "faiss")
# Fields that fix tensor shapes: a saved pool refuses to load under other values.
STRUCTURAL_FIELDS = ("embed_dim", "prompt_length", "key_dim")
# More faiss shards than this buys no speed (one thread each) and takes minutes to build.
MAX_INDEX_SHARDS = 1024


@dataclass
class PoolConfig:
    """Configuration of a :class:`PromptPool`.

    Attributes:
        embed_dim: D, width of prompts, keys and queries (read it from the backbone).
        key_dim: width of keys and queries when it is not D (None: D), e.g. a causal LM
            whose query comes from a separate sentence encoder.
        prompt_length: L, tokens per prompt.
        top_k: prompts chosen per input when ``select`` gets no ``k``.
        index: ``"flat"`` (exact, default), ``"torch"`` (exact, no faiss) or a faiss
            factory string such as ``"HNSW32"`` / ``"IVF256,Flat"`` (approximate).
        nprobe: IVF lists searched per query (faiss default when None).
        ef_search: HNSW search breadth (faiss default when None).
        flat_backend: ``"auto"`` | ``"torch"`` | ``"faiss"``: who runs exact ``"flat"`` search.
        index_shards: split the keys over this many faiss indexes searched in parallel
            threads (``faiss.IndexShards``; not with ``"torch"``).
        frequency_penalty: >= 0. While training, the score of each prompt is lowered by
            ``frequency_penalty * f`` where ``f`` is its share of all selections made while
            training the earlier tasks (L2P's diversified selection). 0 disables it.
        prompt_init: ``"uniform"`` (U(-s, s), as L2P) or ``"normal"`` (N(0, s)) for new prompts
            and keys, ``s = init_scale``.
        init_scale: s above (> 0).
        key_init: ``"as_prompts"`` (keys drawn like the prompts) or ``"jax_uniform"``
            (U[0, 0.01), the official JAX L2P / DualPrompt code's key initialisation).
    """

    embed_dim: int
    prompt_length: int = 5
    top_k: int = 5
    index: str = "flat"
    nprobe: int | None = None
    ef_search: int | None = None
    flat_backend: str = "auto"
    index_shards: int = 1
    frequency_penalty: float = 0.0
    prompt_init: str = "uniform"
    init_scale: float = 1.0
    key_init: str = "as_prompts"
    key_dim: int | None = None

    def __post_init__(self) -> None:
        for name in ("embed_dim", "prompt_length", "top_k"):
            check_positive(name, getattr(self, name), integer=True)
        check_positive("key_dim", self.key_dim, integer=True, allow_none=True)
        check_positive("nprobe", self.nprobe, integer=True, allow_none=True)
        check_positive("ef_search", self.ef_search, integer=True, allow_none=True)
        check_positive("index_shards", self.index_shards, integer=True)
        if self.index_shards > MAX_INDEX_SHARDS:
            raise ValueError(f"index_shards must be <= {MAX_INDEX_SHARDS}, got {self.index_shards}")
        if self.index == "torch" and self.index_shards > 1:
            raise ValueError("index_shards > 1 needs a faiss index ('flat' or a factory string), not 'torch'")
        if not isinstance(self.index, str) or not self.index.strip():
            raise TypeError(f"index must be a non-empty string, got {self.index!r}")
        check_choice("flat_backend", self.flat_backend, _FLAT_BACKENDS)
        check_choice("prompt_init", self.prompt_init, PROMPT_INITS)
        check_choice("key_init", self.key_init, KEY_INITS)
        check_positive("frequency_penalty", self.frequency_penalty, allow_zero=True)
        check_positive("init_scale", self.init_scale)

    @property
    def query_dim(self) -> int:
        """Width of keys and queries: ``key_dim``, else ``embed_dim``."""
        return self.embed_dim if self.key_dim is None else self.key_dim

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
