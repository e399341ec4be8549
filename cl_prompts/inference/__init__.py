"""Inference with a trained model: labels, routing, out-of-scope rejection (docs/inference.md).

Names are resolved lazily: ``cl_prompts.inference.commands`` (the CLI) loads without torch.
"""

from __future__ import annotations

from cl_prompts.inference import defaults
from cl_prompts.inference.defaults import *  # noqa: F403 - the names and defaults of the scores
from cl_prompts.lazy import lazy_attributes

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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
