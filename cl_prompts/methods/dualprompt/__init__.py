"""DualPrompt (Wang et al., ECCV 2022)."""

from cl_prompts.methods.dualprompt.config import DualPromptConfig
from cl_prompts.methods.dualprompt.model import DualPrompt

__all__ = ["DualPromptConfig", "DualPrompt"]
