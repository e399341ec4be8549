"""Backbones: frozen transformers encoders (text, vision) and causal LMs, steered by prompts.

The only package importing transformers. Public names::

    BackboneConfig, PromptedBackbone, BackboneOutput, load_backbone, default_backbone,
    to_device, supported_families, names_causal_lm,
    CausalLMConfig, PromptedCausalLM, load_causal_lm
"""

from .backbone import BackboneOutput, PromptedBackbone
from .causal_config import CausalLMConfig
from .causal_lm import PromptedCausalLM
from .causal_loading import load_causal_lm
from .config import BackboneConfig, names_causal_lm, supported_families
from .inputs import to_device
from .loading import default_backbone, load_backbone

__all__ = [
    "BackboneConfig",
    "BackboneOutput",
    "CausalLMConfig",
    "PromptedBackbone",
    "PromptedCausalLM",
    "default_backbone",
    "load_backbone",
    "load_causal_lm",
    "names_causal_lm",
    "supported_families",
    "to_device",
]
