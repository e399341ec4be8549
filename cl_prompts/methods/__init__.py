"""Continual-learning methods behind one registry.

``build_model(name, backbone, num_classes, **config)`` builds any of :func:`list_methods`;
``load_model(path, backbone)`` reads one back. See docs/methods.md.
"""

from cl_prompts.methods.base import ContinualMethod
from cl_prompts.methods.config import MethodConfig
from cl_prompts.methods.heads import GrowingHead
from cl_prompts.methods.registry import (
    build_model,
    get_method_class,
    list_methods,
    load_model,
    register,
)

__all__ = [
    "ContinualMethod",
    "GrowingHead",
    "MethodConfig",
    "build_model",
    "get_method_class",
    "list_methods",
    "load_model",
    "register",
]
