"""A linear probe with full replay of the earlier data: a non-continual reference."""

from cl_prompts.methods.joint.config import JointConfig
from cl_prompts.methods.joint.model import Joint

__all__ = ["JointConfig", "Joint"]
