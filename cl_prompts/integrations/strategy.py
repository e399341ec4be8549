"""PromptStrategy and make_strategy: a SupervisedTemplate with PromptPoolPlugin built in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins import EvaluationPlugin, EWCPlugin
from avalanche.training.templates import SupervisedTemplate

from cl_prompts.backbones.precision import grad_scaler
from cl_prompts.checks import check_choice, check_positive
from cl_prompts.choices import PRECISIONS
from cl_prompts.integrations.evaluators import results_evaluator
from cl_prompts.integrations.plugin import PromptPoolPlugin, start_experience


class PromptStrategy(SupervisedTemplate):
    """Train and evaluate any ``ContinualMethod`` on an Avalanche stream.

    ``SupervisedTemplate`` (cross-entropy criterion) with a :class:`PromptPoolPlugin` for
    the method, so it trains exactly what ``Naive`` + the plugin trains: growth happens in
    ``model_adaptation`` (``method.begin_experience``), the optimizer is the method's own
    (``make_optimizer``: exactly ``method.trainable_parameters()``, rebuilt after growth,
    with the method's ``grad_clip`` and ``lr_schedule``),
    statistics-only methods (e.g. ncm) get one pass. Evaluation calls ``method(x)``: no
    task label. Arguments are keyword-only, as in Avalanche.

    Args:
        model: the ContinualMethod.
        plugins: more Avalanche plugins. The method's PromptPoolPlugin goes after any
            ``EWCPlugin`` and before the others; pass your own ``PromptPoolPlugin(model)``
            in the list to place it yourself.
        evaluator: an ``EvaluationPlugin`` or a factory of one (default
            :func:`results_evaluator`, no loggers); ``None``: no metrics, as in Avalanche.
        precision: the frozen encoder's precision, "fp32" (default), "bf16", "fp16" or
            "auto" (set on ``model.backbone``; prompts, keys and heads stay fp32). fp16
            scales the loss (``torch.amp.GradScaler``) so prompt gradients do not underflow.

    Other arguments as ``SupervisedTemplate`` (``train_mb_size``, ``device``, ...).
    """

    def __init__(
        self,
        *,
        model: torch.nn.Module,
        train_mb_size: int = 32,
        eval_mb_size: int = 128,
        train_epochs: int = 1,
        device: str | torch.device = "cpu",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator: EvaluationPlugin | Callable[[], EvaluationPlugin] | None = results_evaluator,
        precision: str = "fp32",
        **kwargs: Any,
    ):
        check_choice("precision", precision, PRECISIONS)
        for arg, value in (("train_mb_size", train_mb_size), ("eval_mb_size", eval_mb_size),
                           ("train_epochs", train_epochs)):
            check_positive(arg, value, integer=True)
        plugins = list(plugins or [])
        mine = [p for p in plugins if isinstance(p, PromptPoolPlugin) and p.method is model]
        if mine:
            self.pool_plugin = mine[0]
        else:
            self.pool_plugin = PromptPoolPlugin(model, optimizer="method")
            after_ewc = max((i + 1 for i, p in enumerate(plugins) if isinstance(p, EWCPlugin)), default=0)
            plugins.insert(after_ewc, self.pool_plugin)
        super().__init__(
            model=model, optimizer=None, criterion=torch.nn.CrossEntropyLoss(),
            train_mb_size=train_mb_size, train_epochs=train_epochs, eval_mb_size=eval_mb_size,
            device=device, plugins=plugins, evaluator=evaluator, **kwargs,
        )
        backbone = getattr(model, "backbone", None)
        if backbone is not None:
            backbone.set_precision(precision)
        elif precision != "fp32":
            raise ValueError(f"precision={precision!r} is set on model.backbone; this model has none")
        self.grad_scaler = grad_scaler(precision, self.device)

    uses_method_optimizer = True  # its PromptPoolPlugin applies the method's clipping and schedule

    def backward(self) -> None:
        self.grad_scaler.scale(self.loss).backward(retain_graph=self.retain_graph)

    def optimizer_step(self) -> None:
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()

    @property
    def method(self) -> torch.nn.Module:
        return self.pool_plugin.method

    def model_adaptation(self, model: torch.nn.Module | None = None) -> torch.nn.Module:
        """Grow the method for the training experience (new prompts, keys, head rows)."""
        if self.is_training:
            start_experience(self.method, self.experience)
        return super().model_adaptation(model)

    def make_optimizer(self, **kwargs: Any) -> None:
        """The method's optimizer over exactly its trainable tensors (rebuilt each experience).

        A method with nothing to train (statistics only) gets its optimizer class over an
        empty parameter group: Avalanche's loop calls ``zero_grad``/``step`` regardless.
        """
        optimizer = self.method.make_optimizer()
        if optimizer is None:
            cfg = getattr(self.method, "config", None)
            optimizer = torch.optim.SGD([{"params": []}], lr=getattr(cfg, "lr", 0.0) or 0.0)
        self.optimizer = optimizer
        trainable = {id(p) for p in self.method.trainable_parameters()}
        self.optimized_param_id = {n: p for n, p in self.model.named_parameters() if id(p) in trainable}


def make_strategy(
    method: torch.nn.Module,
    train_mb_size: int = 32,
    eval_mb_size: int = 128,
    train_epochs: int = 1,
    device: str | torch.device = "cpu",
    evaluator: EvaluationPlugin | Callable[[], EvaluationPlugin] | None = results_evaluator,
    plugins: Sequence[BasePlugin] = (),
    precision: str = "fp32",
    **kwargs: Any,
) -> PromptStrategy:
    """``PromptStrategy(model=method, ...)``; the default evaluator is :func:`results_evaluator`."""
    return PromptStrategy(
        model=method, train_mb_size=train_mb_size, eval_mb_size=eval_mb_size, train_epochs=train_epochs,
        device=device, evaluator=evaluator, plugins=list(plugins), precision=precision, **kwargs,
    )
