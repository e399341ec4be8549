"""Inference with a trained model: labels, routing, out-of-scope rejection (docs/inference.md).

Names are resolved lazily: ``cl_prompts.inference.commands`` (the CLI) loads without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from cl_prompts.inference import defaults
from cl_prompts.inference.defaults import *  # noqa: F403 - the names and defaults of the scores

_LAZY = {
    "Calibration": "cl_prompts.inference.out_of_scope",
    "auroc": "cl_prompts.inference.out_of_scope",
    "calibrate": "cl_prompts.inference.out_of_scope",
    "out_of_scope_score": "cl_prompts.inference.out_of_scope",
    "rejection_report": "cl_prompts.inference.out_of_scope",
    "Prediction": "cl_prompts.inference.predictor",
    "Predictor": "cl_prompts.inference.predictor",
}

__all__ = [*defaults.__all__, *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'cl_prompts.inference' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
