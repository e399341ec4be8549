"""Inference with a trained model: labels, routing, out-of-scope rejection (docs/inference.md)."""

from cl_prompts.inference.out_of_scope import (
    DEFAULT_FALSE_REJECTION,
    DEFAULT_SCORE,
    FALLBACK_SCORE,
    LOGIT_SCORES,
    SCORES,
    Calibration,
    auroc,
    calibrate,
    out_of_scope_score,
    rejection_report,
)
from cl_prompts.inference.predictor import CALIBRATION_FILE, Prediction, Predictor

__all__ = [
    "CALIBRATION_FILE",
    "DEFAULT_FALSE_REJECTION",
    "DEFAULT_SCORE",
    "FALLBACK_SCORE",
    "LOGIT_SCORES",
    "SCORES",
    "Calibration",
    "Prediction",
    "Predictor",
    "auroc",
    "calibrate",
    "out_of_scope_score",
    "rejection_report",
]
