"""The prompt pool: prompts with keys in task segments, frozen task by task."""

from cl_prompts.pool.config import PoolConfig
from cl_prompts.pool.io import load_pool, pool_from_tensors, pool_to_tensors, save_pool
from cl_prompts.pool.pool import PromptPool
from cl_prompts.pool.selection import Selection

__all__ = [
    "PoolConfig",
    "PromptPool",
    "Selection",
    "load_pool",
    "pool_from_tensors",
    "pool_to_tensors",
    "save_pool",
]
