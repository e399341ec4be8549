"""The names and defaults of out-of-scope scoring (no torch import: the CLI's help reads them)."""

__all__ = [
    "CALIBRATION_FILE", "COMBINED_SCORE", "DEFAULT_FALSE_REJECTION", "DEFAULT_SCORE",
    "DEFAULT_SIMILARITY_WEIGHT", "FALLBACK_SCORE", "LOGIT_SCORES", "SCORES",
]

LOGIT_SCORES = ("max_logit", "max_probability", "energy")
COMBINED_SCORE = "max_logit+similarity"
SCORES = (*LOGIT_SCORES, COMBINED_SCORE)
# Chosen by validation AUROC (CLINC150 val against oos_val, benchmarks/out_of_scope.py);
# methods without class means fall back to FALLBACK_SCORE.
DEFAULT_SCORE = COMBINED_SCORE
FALLBACK_SCORE = "max_logit"
DEFAULT_SIMILARITY_WEIGHT = 1.0
DEFAULT_FALSE_REJECTION = 0.05
# A run folder's own calibration (``cl-prompts calibrate``); it wins over the model's.
CALIBRATION_FILE = "calibration.json"
