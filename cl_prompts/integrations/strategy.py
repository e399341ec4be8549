"""PromptPoolPlugin, PromptStrategy, make_strategy and the default evaluator (Avalanche)."""

from __future__ import annotations

import importlib.util
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import (
    accuracy_matrix_metrics,
    accuracy_metrics,
    bwt_metrics,
    forgetting_metrics,
)
from avalanche.logging import CSVLogger, TextLogger
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate

from cl_prompts.integrations.evaluation import move_to
from cl_prompts.run_loop import isolated_rng

OPTIMIZER_MODES = ("strategy", "method")


def experience_classes(experience: Any) -> list[int]:
    """Sorted global class ids introduced by an Avalanche experience."""
    classes = getattr(experience, "classes_in_this_experience", None)
    if classes is None:
        classes = experience.dataset.targets.uniques
    return sorted(int(c) for c in classes)


class PromptPoolPlugin(SupervisedPlugin):
    """Grows and freezes a ``ContinualMethod`` inside any Avalanche strategy.

    Before each training experience: ``method.begin_experience(exp_id, classes)`` (new
    prompts, keys, head rows), then the strategy's optimizer is refreshed so that it
    holds exactly ``method.trainable_parameters()``. After it:
    ``method.end_experience(exp_id)`` (freeze what was trained). No algorithm lives here.

    Args:
        method: the ContinualMethod; it must be the strategy's model (or inside it).
        optimizer: ``"strategy"`` keeps the strategy's optimizer (its class and current
            hyper-parameters) and swaps its parameters and state; ``"method"`` replaces
            it with ``method.make_optimizer()`` (the method's configured optimizer and lr).
    """

    def __init__(self, method: torch.nn.Module, optimizer: str = "strategy"):
        super().__init__()
        for name in ("begin_experience", "end_experience", "trainable_parameters", "make_optimizer"):
            if not callable(getattr(method, name, None)):
                raise TypeError(f"method must be a ContinualMethod (missing {name}()), got {type(method).__name__}")
        if optimizer not in OPTIMIZER_MODES:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZER_MODES)}, got {optimizer!r}")
        self.method = method
        self.optimizer_mode = optimizer
        self._open: int | None = None

    def before_training(self, strategy: Any, **kwargs: Any) -> None:
        model = strategy.model
        if model is not self.method and not any(m is self.method for m in model.modules()):
            raise ValueError("PromptPoolPlugin: the strategy's model must be the plugin's method (or contain it)")
        if not getattr(self.method, "requires_training", True) and not isinstance(strategy, PromptStrategy):
            raise TypeError(
                f"method {getattr(self.method, 'name', '')!r} has requires_training=False (it only "
                "observes statistics): train it with PromptStrategy, which calls observe()"
            )

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        exp = strategy.experience
        self._open = int(exp.current_experience)
        self.method.begin_experience(self._open, experience_classes(exp))
        self.refresh_optimizer(strategy)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if self._open is not None:
            self.method.end_experience(self._open)
            self._open = None

    def refresh_optimizer(self, strategy: Any) -> None:
        """Point the strategy's optimizer at exactly ``method.trainable_parameters()``."""
        params = list(self.method.trainable_parameters())
        if self.optimizer_mode == "method":
            opt = self.method.make_optimizer()
            if opt is not None:
                strategy.optimizer = opt
        else:
            opt = strategy.optimizer
            hyper = {k: v for k, v in (opt.param_groups[0] if opt.param_groups else {}).items() if k != "params"}
            opt.param_groups.clear()
            opt.state = defaultdict(dict)  # momentum of old tensors must not leak into new ones
            opt.add_param_group({**hyper, "params": params})
        # keep Avalanche's own bookkeeping (BatchObservation.make_optimizer) consistent
        if hasattr(strategy, "optimized_param_id"):
            ids = {id(p) for p in params}
            strategy.optimized_param_id = {
                n: p for n, p in strategy.model.named_parameters() if id(p) in ids
            }


class PromptStrategy(SupervisedTemplate):
    """Train and evaluate any ``ContinualMethod`` on an Avalanche stream.

    The loss is ``method.training_loss(inputs, targets)`` (everything included);
    methods with ``requires_training=False`` (e.g. ncm) are fed with ``method.observe``
    over one pass of the data. Batches may be text dicts or image tensors. Test-time
    predictions are ``method(inputs)``: task labels are never passed.

    Args:
        method: the ContinualMethod (it is the strategy's model).
        train_outputs: also compute logits of training batches (``mb_output``; costs a
            second forward pass) for training-time metrics; off by default.
        Other arguments as ``SupervisedTemplate``; the optimizer is built by the method.
    """

    def __init__(
        self,
        method: torch.nn.Module,
        *,
        train_mb_size: int = 32,
        eval_mb_size: int = 128,
        train_epochs: int = 1,
        device: str | torch.device = "cpu",
        plugins: Sequence[Any] = (),
        evaluator: Any = None,
        train_outputs: bool = False,
        **kwargs: Any,
    ):
        for arg, value in (("train_mb_size", train_mb_size), ("eval_mb_size", eval_mb_size), ("train_epochs", train_epochs)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{arg} must be a positive int, got {value!r}")
        self.pool_plugin = PromptPoolPlugin(method, optimizer="method")
        self.train_outputs = bool(train_outputs)
        # Placeholder until the method has grown: the plugin swaps in method.make_optimizer().
        placeholder = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
        super().__init__(
            model=method, optimizer=placeholder, criterion=torch.nn.CrossEntropyLoss(),
            train_mb_size=train_mb_size, train_epochs=train_epochs, eval_mb_size=eval_mb_size,
            device=device, plugins=[self.pool_plugin, *plugins],
            evaluator=default_evaluator() if evaluator is None else evaluator, **kwargs,
        )

    @property
    def method(self) -> torch.nn.Module:
        return self.pool_plugin.method

    def eval(self, *args: Any, **kwargs: Any) -> Any:
        """Avalanche's eval, with the global RNGs isolated.

        Every DataLoader draws from the global torch RNG when it starts, and the methods
        draw new prompts and head rows from it; without the isolation, evaluating more or
        fewer experiences would change the weights trained afterwards.
        """
        with isolated_rng(self.device):
            return super().eval(*args, **kwargs)

    def make_optimizer(self, **kwargs: Any) -> None:
        """No-op: the optimizer is rebuilt from the method after it grows (PromptPoolPlugin)."""

    def _unpack_minibatch(self) -> None:
        self.mbatch = [move_to(x, self.device) for x in self.mbatch]

    def forward(self) -> torch.Tensor | None:
        if self.is_training and not self.train_outputs:
            return None  # training_loss runs its own forward; avoid paying twice
        if self.is_training:
            with torch.no_grad():
                return self.model(self.mb_x)
        return self.model(self.mb_x)

    def criterion(self) -> torch.Tensor:
        if self.is_training:
            return self.method.training_loss(self.mb_x, self.mb_y)
        # eval loss for logging only: unseen classes are -inf, cap them to stay finite
        return F.cross_entropy(self.mb_output.clamp(min=-1e4), self.mb_y)

    def training_epoch(self, **kwargs: Any) -> None:
        if getattr(self.method, "requires_training", True):
            return super().training_epoch(**kwargs)
        if self.clock.train_exp_epochs > 0:
            return None  # statistics need one pass; more epochs would only repeat it
        for mbatch in self.dataloader:
            self.mbatch = mbatch
            if self._stop_training:
                break
            self._unpack_minibatch()
            self._before_training_iteration(**kwargs)
            self.method.observe(self.mb_x, self.mb_y)
            self.loss = torch.zeros((), device=self.device)
            self._after_training_iteration(**kwargs)
        return None


def default_evaluator(
    log_dir: str | Path | None = None, *, stdout: bool = False, tensorboard: bool | None = None
) -> EvaluationPlugin:
    """Accuracy per experience and stream, forgetting, BWT and the accuracy matrix.

    Args:
        log_dir: when given, a text log (``log.txt``), CSV files (``eval_results.csv``,
            ``training_results.csv``) and, when TensorBoard is installed, event files
            (``tb/``) are written there.
        stdout: also print the text log.
        tensorboard: ``None`` = when installed; ``True`` requires it.

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
    return EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        forgetting_metrics(experience=True, stream=True),
        bwt_metrics(experience=True, stream=True),
        accuracy_matrix_metrics(),
        loggers=loggers,
    )


def make_strategy(
    method: torch.nn.Module,
    train_mb_size: int = 32,
    eval_mb_size: int = 128,
    train_epochs: int = 1,
    device: str | torch.device = "cpu",
    evaluator: Any = None,
    plugins: Sequence[Any] = (),
    **kwargs: Any,
) -> PromptStrategy:
    """A :class:`PromptStrategy` with the default evaluator unless one is given."""
    return PromptStrategy(
        method=method, train_mb_size=train_mb_size, eval_mb_size=eval_mb_size, train_epochs=train_epochs,
        device=device, evaluator=evaluator, plugins=plugins, **kwargs,
    )
