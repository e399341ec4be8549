"""CODA-Prompt (Smith et al., CVPR 2023)."""

from cl_prompts.methods.coda_prompt.config import CodaPromptConfig
from cl_prompts.methods.coda_prompt.model import CodaPrompt

__all__ = ["CodaPromptConfig", "CodaPrompt"]
