"""Backbones: frozen transformers encoders, text and vision, steered by prompts.

The only package importing transformers. Public names::

    BackboneConfig, PromptedBackbone, BackboneOutput, load_backbone, default_backbone,
    to_device, supported_families
"""

from .backbone import BackboneOutput, PromptedBackbone
from .config import BackboneConfig, supported_families
from .inputs import to_device
from .loading import default_backbone, load_backbone

__all__ = [
    "BackboneConfig",
    "BackboneOutput",
    "PromptedBackbone",
    "default_backbone",
    "load_backbone",
    "supported_families",
    "to_device",
]
