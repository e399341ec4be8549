"""Top-k key search for the prompt pool: exact (torch / faiss flat) or approximate (faiss),
in one process or split over the ranks of a torch.distributed group."""

from cl_prompts.index.key_index import KeyIndex
from cl_prompts.index.sharded import RankShardedKeyIndex

__all__ = ["KeyIndex", "RankShardedKeyIndex"]
