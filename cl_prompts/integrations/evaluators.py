"""The evaluator PromptStrategy uses by default, with Avalanche's metrics and loggers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from avalanche.evaluation.metrics import (
    accuracy_matrix_metrics,
    accuracy_metrics,
    bwt_metrics,
    forgetting_metrics,
    loss_metrics,
)
from avalanche.logging import CSVLogger, TextLogger
from avalanche.training.plugins import EvaluationPlugin


def results_evaluator(
    log_dir: str | Path | None = None,
    *,
    stdout: bool = False,
    tensorboard: bool | None = None,
) -> EvaluationPlugin:
    """Accuracy and loss per experience and stream, forgetting, BWT and the accuracy matrix.

    These are what a results file holds (``EvalStream/Acc_Matrix`` is the accuracy matrix,
    fractions). Avalanche's own ``default_evaluator`` logs epoch accuracy and loss instead.

    Args:
        log_dir: when given, a text log (``log.txt``), CSV files (``eval_results.csv``,
            ``training_results.csv``) and TensorBoard event files (``tb/``) go there.
        stdout: also print the text log.
        tensorboard: ``None`` = when installed (with ``log_dir``); ``True`` requires it.

    For other metrics or loggers (W&B, ...) build your own ``EvaluationPlugin``: every
    standard Avalanche metric works with the methods, in PromptStrategy and with the plugin.

    Note: Avalanche's forgetting is accuracy right after training minus final accuracy;
    ``cl_prompts.results`` reports the best-earlier definition from the accuracy matrix.
    """
    loggers: list[Any] = []
    if stdout:
        loggers.append(TextLogger(sys.stdout))
    if log_dir is not None:
        path = Path(log_dir)
        path.mkdir(parents=True, exist_ok=True)
        loggers.append(TextLogger(open(path / "log.txt", "a", encoding="utf-8", buffering=1)))
        loggers.append(CSVLogger(str(path)))
        has_tb = importlib.util.find_spec("tensorboard") is not None
        if tensorboard and not has_tb:
            raise ValueError("tensorboard=True but the tensorboard package is not installed")
        if has_tb and tensorboard is not False:
            from avalanche.logging import TensorboardLogger

            loggers.append(TensorboardLogger(str(path / "tb")))
    elif tensorboard:
        raise ValueError("tensorboard=True needs a log_dir for its event files")
    return EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        loss_metrics(experience=True, stream=True),
        forgetting_metrics(experience=True, stream=True),
        bwt_metrics(experience=True, stream=True),
        accuracy_matrix_metrics(),
        loggers=loggers,
    )
