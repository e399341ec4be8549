"""Sequential linear head on frozen features, with or without masking of absent classes."""

from cl_prompts.methods.linear_probe.config import LinearProbeConfig
from cl_prompts.methods.linear_probe.model import LinearProbe

__all__ = ["LinearProbeConfig", "LinearProbe"]
