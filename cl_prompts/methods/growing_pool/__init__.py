"""``growing_pool``: per-task prompts routed by a key per class (this engine's own design)."""

from cl_prompts.methods.growing_pool.config import GrowingPoolConfig
from cl_prompts.methods.growing_pool.model import GrowingPool

__all__ = ["GrowingPoolConfig", "GrowingPool"]
