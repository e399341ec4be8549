"""cl_prompts: continual-learning prompt pools for HuggingFace transformers.

Top-level names are resolved lazily so that ``import cl_prompts`` stays fast and
never imports avalanche, transformers or faiss. Runs have their own package:
``from cl_prompts.run import RunConfig, run``.
"""

from __future__ import annotations

from cl_prompts.lazy import lazy_attributes

__version__ = "0.1.0"

_LAZY = {
    "PromptPool": "cl_prompts.pool",
    "PoolConfig": "cl_prompts.pool",
    "Selection": "cl_prompts.pool",
    "KeyIndex": "cl_prompts.index",
    "BackboneConfig": "cl_prompts.backbones",
    "PromptedBackbone": "cl_prompts.backbones",
    "load_backbone": "cl_prompts.backbones",
    "default_backbone": "cl_prompts.backbones",
    "build_model": "cl_prompts.methods",
    "load_model": "cl_prompts.methods",
    "list_methods": "cl_prompts.methods",
    "load_clinc150": "cl_prompts.data",
    "load_text_file": "cl_prompts.data",
    "Predictor": "cl_prompts.inference",
    "Calibration": "cl_prompts.inference",
}

__all__ = sorted(_LAZY) + ["__version__"]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
