"""Naive sequential fine-tuning of the whole model: the forgetting reference."""

from cl_prompts.methods.finetune.config import FinetuneConfig
from cl_prompts.methods.finetune.model import Finetune

__all__ = ["FinetuneConfig", "Finetune"]
