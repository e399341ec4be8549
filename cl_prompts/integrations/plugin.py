"""PromptPoolPlugin: any registered method inside any Avalanche ``SupervisedTemplate`` strategy.

The algorithm stays in the method (cl_prompts.methods.base); the plugin only calls its
pieces from Avalanche's callbacks, in the order ``method.training_loss`` uses them, so a
strategy with the plugin computes what the runner computes:

=========================  ==========================================================
callback                   what the plugin does
=========================  ==========================================================
before_training            refuses combinations that would fail late or change the
                           algorithm silently (see :meth:`PromptPoolPlugin.check`)
before_training_exp        ``begin_experience`` (grow) and point the optimizer at
                           exactly ``trainable_parameters()``; the method's lr
                           schedule for the experience (its optimizer only)
before_forward             ``observe`` the samples of the open experience (statistics)
after_forward              class masking of ``mb_output`` for the strategy's criterion
before_backward            unmasked ``mb_output`` back (for LwF, metrics), auxiliary
                           loss terms added; statistics-only methods: a zero loss;
                           methods that answer by generation: their answer loss added
                           (their training logits carry no gradient)
before_update              gradient clipping at ``grad_clip`` (its optimizer only)
after_update               one step of the lr schedule
after_training_epoch       statistics-only methods stop after one pass
after_training_exp         ``end_experience`` (freeze)
before/after_eval          global RNGs isolated: evaluating does not change training
after_eval_forward         ``-inf`` logits of classes never seen made finite (losses)
=========================  ==========================================================
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EWCPlugin, LwFPlugin
from torch.optim.lr_scheduler import LRScheduler

from cl_prompts.data.tensors import take_rows
from cl_prompts.methods.optimization import clip_gradients, make_lr_schedule
from cl_prompts.random_state import RngState

OPTIMIZER_MODES = ("strategy", "method")
# How far below a row's lowest real logit the classes never seen are put for losses:
# Avalanche's IncrementalClassifier masks its unseen units at -1000 the same way.
UNSEEN_LOGIT_MARGIN = 1000.0


# Why the plugin refuses Avalanche's distributed training; the runner has its own.
DISTRIBUTED_REFUSAL = (
    "PromptPoolPlugin does not support Avalanche's distributed training: Avalanche wraps the model "
    "in DistributedDataParallel once, while a prompt method adds and freezes tensors at every "
    "experience, and each rank would observe only its own samples, so statistics, keys and the "
    "key index would differ between ranks. For data-parallel training launch the runner: "
    "torchrun --nproc-per-node N -m cl_prompts.cli run ... (docs/distributed.md)"
)


def distributed_world_size() -> int:
    """Processes in the initialised torch.distributed group (1 when there is none)."""
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def experience_classes(experience: Any) -> list[int]:
    """Sorted global class ids introduced by an Avalanche experience."""
    classes = getattr(experience, "classes_in_this_experience", None)
    if classes is None:
        classes = experience.dataset.targets.uniques
    return sorted(int(c) for c in classes)


def start_experience(method: Any, experience: Any) -> bool:
    """``method.begin_experience`` for an Avalanche experience unless it is already open.

    Returns True when it began it now (the caller then owns the optimizer refresh).
    """
    exp_id = int(experience.current_experience)
    if method.is_open and method.current_experience == exp_id:
        return False
    method.begin_experience(exp_id, experience_classes(experience))
    return True


def finite_logits(logits: torch.Tensor) -> torch.Tensor:
    """(B, C) logits with every ``-inf`` put ``UNSEEN_LOGIT_MARGIN`` below its row's lowest
    finite logit (0 for a row with none): the argmax is unchanged, every loss is finite."""
    neg_inf = torch.isneginf(logits)
    if not bool(neg_inf.any()):
        return logits
    lowest = logits.masked_fill(neg_inf, float("inf")).amin(dim=1, keepdim=True)  # (B, 1)
    floor = torch.where(torch.isfinite(lowest), lowest - UNSEEN_LOGIT_MARGIN, torch.zeros_like(lowest))
    return torch.where(neg_inf, floor.detach().expand_as(logits), logits)


class PromptPoolPlugin(SupervisedPlugin):
    """Trains a ``ContinualMethod`` inside any Avalanche strategy, as the method defines it.

    Put it first in ``plugins=[...]`` (``EWCPlugin`` goes before it, see :meth:`check`).
    The strategy's model must be the method (or a module whose output is the method's
    logits); its criterion (cross-entropy in ``Naive``) sees the method's training logits
    with the method's class masking applied; key-matching, orthogonality and replay terms
    are added to ``strategy.loss``; statistics (keys, class sums) are observed on the
    samples of the open experience only (replayed samples are trained on, not observed).
    Statistics-only methods (``requires_training=False``) get one pass and a zero loss.

    Args:
        method: the ContinualMethod.
        optimizer: ``"strategy"`` keeps the strategy's optimizer (its class and current
            hyper-parameters) and swaps its parameters, resetting its state; ``"method"``
            replaces it with ``method.make_optimizer()`` (the method's configured one) and
            applies the method's ``grad_clip`` and ``lr_schedule`` (a
            :class:`~cl_prompts.integrations.PromptStrategy` always does).
    """

    def __init__(self, method: torch.nn.Module, optimizer: str = "strategy"):
        super().__init__()
        for name in ("begin_experience", "end_experience", "trainable_parameters", "observe",
                     "mask_training_logits", "pop_auxiliary_losses"):
            if not callable(getattr(method, name, None)):
                raise TypeError(f"method must be a ContinualMethod (missing {name}()), got {type(method).__name__}")
        for name in ("is_open", "current_experience", "current_mask"):
            if not hasattr(method, name):
                raise TypeError(f"method must be a ContinualMethod (missing {name}), got {type(method).__name__}")
        if optimizer not in OPTIMIZER_MODES:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZER_MODES)}, got {optimizer!r}")
        self.method = method
        self.optimizer_mode = optimizer
        config = getattr(method, "config", None)
        if optimizer == "strategy" and (getattr(config, "grad_clip", None) is not None
                                        or getattr(config, "lr_schedule", "constant") != "constant"):
            warnings.warn("PromptPoolPlugin(optimizer='strategy') keeps the strategy's optimizer: the "
                          "method's grad_clip and lr_schedule are not applied; pass optimizer='method' "
                          "to train with them", stacklevel=2)
        self._schedule: LRScheduler | None = None
        self._clipped: list[torch.nn.Parameter] = []
        self._raw_output: torch.Tensor | None = None
        self._rng: list[RngState] = []

    @property
    def statistics_only(self) -> bool:
        return not getattr(self.method, "requires_training", True)

    # ---------------------------------------------------------------- checks
    def before_training(self, strategy: Any, **kwargs: Any) -> None:
        self.check(strategy)

    def check(self, strategy: Any) -> None:
        """Refuse, before anything trains, what would fail late or silently change the method.

        - the strategy's model must be (or contain) the method;
        - ``EWCPlugin`` must come before this plugin: it computes its importances at the
          end of an experience, while the experience's tensors still train;
        - ``LwFPlugin`` must come after it: it reads the unmasked training logits in
          ``before_backward`` and copies the model once its experience is frozen;
        - Avalanche's distributed training (``avalanche.distributed``) is refused
          (``DISTRIBUTED_REFUSAL`` says why);
        - EWC and LwF are refused with statistics-only methods (nothing is trained), and
          EWC with methods whose new tensors reuse old names (``renews_parameters``).
        """
        model, m = strategy.model, self.method
        if distributed_world_size() > 1:
            raise RuntimeError(DISTRIBUTED_REFUSAL)
        if model is not m and not any(sub is m for sub in model.modules()):
            raise ValueError("PromptPoolPlugin: the strategy's model must be the plugin's method (or contain it)")
        plugins = list(strategy.plugins)
        mine = next(i for i, p in enumerate(plugins) if p is self)
        name = getattr(m, "name", type(m).__name__)
        for i, p in enumerate(plugins):
            if p is not self and isinstance(p, PromptPoolPlugin) and p.method is m:
                raise ValueError("PromptPoolPlugin: the strategy has two PromptPoolPlugins for the same method; keep one")
            if isinstance(p, (EWCPlugin, LwFPlugin)) and self.statistics_only:
                raise ValueError(
                    f"{type(p).__name__} cannot act on {name!r}: it only observes statistics (no "
                    "parameter is trained); use the plugin alone or with ReplayPlugin"
                )
            if isinstance(p, EWCPlugin) and getattr(m, "renews_parameters", False):
                raise ValueError(
                    f"EWCPlugin matches parameters by name, and {name!r} trains new tensors under the "
                    "names of the ones it froze (each experience's prompts): EWC would pull them "
                    f"towards unrelated values. {name!r} already freezes every earlier experience; "
                    "use it without EWCPlugin (ReplayPlugin and LwFPlugin work with it)"
                )
            if isinstance(p, EWCPlugin) and i > mine:
                raise ValueError(
                    "EWCPlugin must come before PromptPoolPlugin in plugins=[...]: it computes its "
                    "importances at the end of each experience, before PromptPoolPlugin freezes "
                    "what the experience trained"
                )
            if isinstance(p, LwFPlugin) and i < mine:
                raise ValueError(
                    "LwFPlugin must come after PromptPoolPlugin in plugins=[...]: it reads the "
                    "unmasked training logits and copies the model once its experience is frozen"
                )

    # ---------------------------------------------------------------- lifecycle
    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if start_experience(self.method, strategy.experience):
            self.refresh_optimizer(strategy)
        # what each update of this experience clips and schedules, set once (not per step)
        self._schedule, self._clipped = None, []
        if self.steps_optimizer(strategy) and not self.statistics_only:
            config = getattr(self.method, "config", None)
            steps = len(strategy.dataloader) * strategy.train_epochs
            self._schedule = make_lr_schedule(strategy.optimizer, config, steps)
            if getattr(config, "grad_clip", None) is not None:
                self._clipped = list(self.method.trainable_parameters())

    def steps_optimizer(self, strategy: Any) -> bool:
        """Whether the strategy's optimizer is the method's, so its clipping and schedule apply."""
        return self.optimizer_mode == "method" or getattr(strategy, "uses_method_optimizer", False)

    def before_update(self, strategy: Any, **kwargs: Any) -> None:
        if self._clipped:
            clip_gradients(self._clipped, self.method.config, strategy.optimizer, getattr(strategy, "grad_scaler", None))

    def after_update(self, strategy: Any, **kwargs: Any) -> None:
        if self._schedule is not None:
            self._schedule.step()

    def after_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        if self.statistics_only:
            strategy.stop_training()  # statistics need one pass; more would count samples twice

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if self.method.is_open:
            self.method.end_experience(self.method.current_experience)
        opt = getattr(strategy, "optimizer", None)
        if self.optimizer_mode == "method" and opt is not None and len(opt.param_groups) > 1:
            # Avalanche's update_optimizer (the next experience's make_optimizer, before this
            # plugin swaps in the method's optimizer again) puts new tensors in their parent
            # module's group and fails when the parent spans several groups (the head's own
            # head_lr group): hand it a one-group placeholder over the same tensors meanwhile
            # (never stepped: before_training_exp replaces it).
            params = [p for g in opt.param_groups for p in g["params"]]
            strategy.optimizer = torch.optim.SGD([{"params": params}], lr=opt.param_groups[0]["lr"])

    def refresh_optimizer(self, strategy: Any) -> None:
        """Point the strategy's optimizer at exactly ``method.trainable_parameters()``."""
        params = list(self.method.trainable_parameters())
        opt = self.method.make_optimizer() if self.optimizer_mode == "method" else None
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
            strategy.optimized_param_id = {n: p for n, p in strategy.model.named_parameters() if id(p) in ids}

    # ---------------------------------------------------------------- one training iteration
    def before_forward(self, strategy: Any, **kwargs: Any) -> None:
        targets = strategy.mb_y
        own = self.method.current_mask[targets]  # replayed samples of earlier experiences: not observed
        if bool(own.any()):
            with torch.no_grad():
                if bool(own.all()):
                    self.method.observe(strategy.mb_x, targets)
                else:
                    self.method.observe(take_rows(strategy.mb_x, own), targets[own])

    def after_forward(self, strategy: Any, **kwargs: Any) -> None:
        if self.statistics_only:
            return
        masked = self.method.mask_training_logits(strategy.mb_output, strategy.mb_y)
        if masked is not strategy.mb_output:
            self._raw_output, strategy.mb_output = strategy.mb_output, masked

    def before_backward(self, strategy: Any, **kwargs: Any) -> None:
        if self._raw_output is not None:  # the mask was for the criterion only
            strategy.mb_output, self._raw_output = self._raw_output, None
        if self.statistics_only:
            # nothing to optimise: a zero loss that backward accepts (no parameter gets a gradient)
            strategy.loss = torch.zeros_like(strategy.loss, requires_grad=True)
            return
        for term in self.method.pop_auxiliary_losses():
            strategy.loss = strategy.loss + term
        if getattr(self.method, "generative", False):  # its own loss: the answer tokens' cross-entropy
            strategy.loss = strategy.loss + self.method.training_loss(strategy.mb_x, strategy.mb_y, observe=False)

    # ---------------------------------------------------------------- evaluation
    def before_eval(self, strategy: Any, **kwargs: Any) -> None:
        # every DataLoader draws from the global RNG when it starts: without this, how much
        # is evaluated would change the prompts and head rows drawn for later experiences
        self._rng.append(RngState.capture(strategy.device))

    def after_eval_forward(self, strategy: Any, **kwargs: Any) -> None:
        strategy.mb_output = finite_logits(strategy.mb_output)

    def after_eval(self, strategy: Any, **kwargs: Any) -> None:
        if self._rng:
            self._rng.pop().restore()
