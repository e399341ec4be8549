"""A single shared soft prompt trained sequentially: the "no pool" reference."""

from cl_prompts.methods.prompt_tuning.config import PromptTuningConfig
from cl_prompts.methods.prompt_tuning.model import PromptTuning

__all__ = ["PromptTuningConfig", "PromptTuning"]
