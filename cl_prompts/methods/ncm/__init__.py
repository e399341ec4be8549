"""Nearest class mean on frozen features (SimpleCIL)."""

from cl_prompts.methods.ncm.config import NCMConfig
from cl_prompts.methods.ncm.model import NCM

__all__ = ["NCMConfig", "NCM"]
