"""All training data at once: the (non-continual) upper bound."""

from cl_prompts.methods.joint.config import JointConfig
from cl_prompts.methods.joint.model import Joint

__all__ = ["JointConfig", "Joint"]
