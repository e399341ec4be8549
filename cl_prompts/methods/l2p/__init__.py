"""Learning to Prompt (Wang et al., CVPR 2022)."""

from cl_prompts.methods.l2p.config import L2PConfig
from cl_prompts.methods.l2p.model import L2P

__all__ = ["L2PConfig", "L2P"]
