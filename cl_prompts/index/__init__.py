"""Top-k key search for the prompt pool: exact (torch / faiss flat) or approximate (faiss)."""

from cl_prompts.index.key_index import FLAT_TORCH_MAX_KEYS, KeyIndex

__all__ = ["FLAT_TORCH_MAX_KEYS", "KeyIndex"]
