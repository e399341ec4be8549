"""The :class:`ContinualMethod` interface of docs/design.md and what every method shares.

A method owns a (frozen) backbone, grows per experience (``begin_experience``), is
trained (or fed statistics), freezes what it trained in ``end_experience`` and predicts
task-agnostically with ``forward``.

One training step is defined once, in pieces that any training loop can call:

- ``observe(inputs, targets)``: statistics of the batch (keys, class sums, feature memory);
- ``method(inputs)`` in train mode while an experience is open: the *training* logits
  (e.g. the true task's prompts), keeping the batch's auxiliary loss terms (key
  matching, orthogonality, replay) for ``pop_auxiliary_losses()``;
- ``mask_training_logits(logits, targets)``: the method's class masking;
- the loss: cross-entropy of the masked logits plus the auxiliary terms.

``training_loss`` chains them for the plain loop of the runner; the Avalanche plugin calls
the same pieces from its callbacks, so both compute the same thing.

Subclasses implement the hooks ``_grow``, ``_freeze``, ``_logits`` and
``trainable_parameters``, and ``_train_forward`` when training differs from prediction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cl_prompts.checks import is_int
from cl_prompts.methods.config import MethodConfig
from cl_prompts.methods.routing import Routing
from cl_prompts.methods.saving import load_method, save_method
from cl_prompts.methods.shared_statistics import SharedStatistics

if TYPE_CHECKING:  # methods depend on the backbone's type only
    from cl_prompts.backbones import PromptedBackbone


def batch_size_of(inputs: Any) -> int:
    if isinstance(inputs, Tensor):
        return int(inputs.shape[0])
    return int(inputs["input_ids"].shape[0])


class ContinualMethod(SharedStatistics, nn.Module):
    """Base class of every registered method (see docs/design.md, "Methods").

    Args:
        backbone: a frozen ``PromptedBackbone``; registered as a submodule so ``.to()``
            moves it, but never saved unless the method trains it (``finetune``).
        num_classes: total number of classes C of the stream; logits are (B, C).
        config: an instance of the method's ``config_class``.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    requires_training: ClassVar[bool] = True
    saves_backbone: ClassVar[bool] = False
    # True when each experience trains new tensors registered under the names earlier
    # experiences used (a pool's current segment): regularisers that match parameters by
    # name (EWC) would tie them to unrelated frozen ones.
    renews_parameters: ClassVar[bool] = False
    # Answers by generation on a causal LM (cl_prompts.methods.generative); False: reads features.
    generative: ClassVar[bool] = False
    # Reads only the backbone's frozen features, so it runs on a causal LM's too.
    runs_on_causal_lm: ClassVar[bool] = False
    # Why a data-parallel run (cl_prompts.run.distributed) cannot train this method; "" if it can.
    data_parallel_refusal: ClassVar[str] = ""

    def __init__(self, backbone: PromptedBackbone, num_classes: int, config: MethodConfig):
        super().__init__()
        if not is_int(num_classes) or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"config must be a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.backbone = backbone
        self.num_classes = num_classes
        self.config = config
        self.hidden_size = int(backbone.hidden_size)
        self.experiences: list[list[int]] = []  # classes of each experience begun
        self.finished: list[bool] = []  # end_experience called for it
        # True while from_pretrained replays the growth: hooks skip data-dependent work
        self._restoring = False
        self.register_buffer("seen_mask", torch.zeros(num_classes, dtype=torch.bool))
        self.register_buffer("current_mask", torch.zeros(num_classes, dtype=torch.bool))
        self._aux_terms: list[Tensor] = []  # auxiliary loss terms of the last train-mode forward
        # Saved with the model so that a model folder answers on its own (cl_prompts.inference):
        # the C class names, and the out-of-scope calibration (a dict, see Calibration.to_dict).
        self.class_names: list[str] | None = None
        self.calibration: dict[str, Any] | None = None

    # ---------------------------------------------------------------- lifecycle
    @property
    def current_experience(self) -> int:
        """Index of the last experience begun, -1 before the first."""
        return len(self.experiences) - 1

    @property
    def is_open(self) -> bool:
        """True between ``begin_experience`` and ``end_experience`` (training may happen)."""
        return bool(self.experiences) and not self.finished[-1]

    def begin_experience(self, experience: int, classes: Sequence[int]) -> None:
        """Grow for a new experience holding ``classes`` (global ids). Experiences come in order."""
        if experience != len(self.experiences):
            raise ValueError(
                f"experience must be {len(self.experiences)} (experiences are begun in order), "
                f"got {experience!r}"
            )
        if self.experiences and not self.finished[-1]:
            raise ValueError(f"end_experience({experience - 1}) must be called before experience {experience}")
        cls = [int(c) for c in classes]
        if not cls or len(set(cls)) != len(cls) or min(cls) < 0 or max(cls) >= self.num_classes:
            raise ValueError(
                f"classes must be distinct ints in [0, {self.num_classes}), got {list(classes)}"
            )
        self.experiences.append(cls)
        self.finished.append(False)
        self._aux_terms = []
        idx = torch.tensor(cls, dtype=torch.long, device=self.seen_mask.device)
        self.current_mask.zero_()
        self.current_mask[idx] = True
        self.seen_mask[idx] = True
        self._grow(experience, cls)
        self._open_statistics()

    def end_experience(self, experience: int) -> None:
        """Freeze what was trained during ``experience``."""
        if experience != self.current_experience or self.finished[experience]:
            raise ValueError(
                f"experience must be the open experience {self.current_experience}, got {experience!r}"
            )
        self.finished[experience] = True
        self._aux_terms = []  # no graph outlives the experience (a deepcopy would refuse it)
        self._freeze(experience)
        if not self._restoring:
            self._check_statistics_summed()

    def _check_open(self, targets: Tensor) -> None:
        if self.current_experience < 0 or self.finished[-1]:
            raise RuntimeError("call begin_experience() before training or observing")
        if targets.dim() != 1:
            raise ValueError(f"targets must have shape (B,), got {tuple(targets.shape)}")
        if not bool(self.current_mask[targets].all()):
            bad = sorted(set(targets[~self.current_mask[targets]].tolist()))
            raise ValueError(f"targets {bad} are not classes of experience {self.current_experience}")

    def training_loss(self, inputs: Any, targets: Tensor, *, observe: bool = True) -> Tensor:
        """Scalar loss of one batch, everything included; observes the batch's statistics too.

        observe, then cross-entropy of the masked training logits, plus the auxiliary terms
        (added one by one, in the order the method lists them). ``observe=False``: the
        caller observes the samples itself (a data-parallel rank observes its share of the global
        batch and computes the loss of its slice).
        """
        if not self.requires_training:
            raise RuntimeError(f"method {self.name!r} is not trained by gradient: use observe()")
        self._check_open(targets)
        if observe:
            with torch.no_grad():
                self.observe(inputs, targets)
        logits, aux = self._training_logits(inputs)
        loss = F.cross_entropy(self.mask_training_logits(logits, targets), targets)
        for term in aux:
            loss = loss + term
        return loss

    def observe(self, inputs: Any, targets: Tensor) -> None:
        """Accumulate statistics of a batch of the open experience (a no-op by default).

        Statistics-only methods learn from this alone; others collect what they build at
        ``end_experience`` (growing_pool's keys, joint's feature memory). Each training
        batch is observed once per epoch.
        """
        self._check_open(targets)

    def frozen_query_layers(self) -> int | None:
        """n when training reads each sample's frozen query, ``backbone.query_features(inputs,
        layers=n)``; None when it reads none. The runner then computes those queries ahead, in
        length-sorted batches, so the training batches find them in the query cache."""
        return None

    def training_counters(self) -> list[Tensor]:
        """Integer buffers the training forward adds counts to (the prompt pools' usage): a
        data-parallel step sums their increments over the ranks."""
        from cl_prompts.pool import PromptPool

        return [m.usage for m in self.modules() if isinstance(m, PromptPool)]

    def training_class_mask(self) -> Tensor | None:
        """(C,) bool: the classes the training loss may predict now; None = every class seen.

        Methods configured with ``mask_absent`` restrict the softmax to the open
        experience's classes (L2P's class masking).
        """
        if getattr(self.config, "mask_absent", False):
            return self.current_mask
        return None

    def mask_training_logits(self, logits: Tensor, targets: Tensor | None = None) -> Tensor:
        """Training logits (B, C) with the classes outside ``training_class_mask()`` at ``-inf``.

        targets (B,): their classes always stay (samples of earlier experiences replayed by
        a training loop compete with the open experience's classes instead of getting an
        infinite loss).
        """
        allowed = self.training_class_mask()
        if allowed is None:
            return logits
        if targets is not None:
            allowed = allowed.clone()
            allowed[targets] = True
        return logits.masked_fill(~allowed, float("-inf"))

    def pop_auxiliary_losses(self) -> list[Tensor]:
        """The auxiliary loss terms (scalars) of the last train-mode forward; cleared on read."""
        terms, self._aux_terms = self._aux_terms, []
        return terms

    def _training_logits(self, inputs: Any) -> tuple[Tensor, list[Tensor]]:
        logits, aux = self._train_forward(inputs)
        return logits.masked_fill(~self.seen_mask, float("-inf")), aux

    # ---------------------------------------------------------------- hooks
    def _grow(self, experience: int, classes: list[int]) -> None:
        raise NotImplementedError

    def _freeze(self, experience: int) -> None:
        raise NotImplementedError

    def _train_forward(self, inputs: Any) -> tuple[Tensor, list[Tensor]]:
        """Training logits (B, C) and the batch's auxiliary loss terms; prediction's by default."""
        return self._logits(inputs), []

    def _logits(self, inputs: Any) -> Tensor:
        raise NotImplementedError

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Exactly the tensors the optimizer may hold now."""
        raise NotImplementedError

    def _param_groups(self) -> list[dict[str, Any]]:
        """One group at ``config.lr``; a method whose config has a ``head_lr`` that is set puts
        ``self.head``'s trainable tensors in a group of their own at that rate."""
        params = self.trainable_parameters()
        head_lr = getattr(self.config, "head_lr", None)
        if head_lr is None:
            return [{"params": params}]
        head = self.head.trainable_parameters()
        ids = {id(p) for p in head}
        return [{"params": [p for p in params if id(p) not in ids]}, {"params": head, "lr": head_lr}]

    # ---------------------------------------------------------------- optimisation
    def make_optimizer(self) -> torch.optim.Optimizer | None:
        """A fresh optimizer over ``trainable_parameters()`` (None when there is nothing to train)."""
        groups = [g for g in self._param_groups() if g["params"]]
        if not groups:
            return None
        for g in groups:
            for p in g["params"]:
                if not p.requires_grad:  # a frozen tensor must never reach the optimizer
                    raise RuntimeError(f"{self.name}: a frozen tensor was listed as trainable")
        cfg = self.config
        if cfg.optimizer == "adam":
            return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)

    # ---------------------------------------------------------------- inference
    def forward(self, inputs: Any) -> Tensor:
        """inputs (text dict or images) -> logits (B, C); classes never seen are ``-inf``.

        In train mode while an experience is open these are the training logits (the
        auxiliary loss terms of the batch wait in ``pop_auxiliary_losses()``); otherwise
        the task-agnostic prediction.
        """
        if self.training and self.is_open:
            logits, self._aux_terms = self._training_logits(inputs)
            return logits
        return self._logits(inputs).masked_fill(~self.seen_mask, float("-inf"))

    @torch.no_grad()
    def logits_under(self, inputs: Any, variants: Sequence[dict[str, Any]]) -> list[Tensor]:
        """Prediction logits (B, C) of ``inputs`` under each of ``variants``: dicts of options
        that change only predictions (growing_pool's ``candidates``, ``fusion_weight``). The
        config is restored afterwards. Methods may share work between the variants."""
        kept = self.config
        try:
            out = []
            for variant in variants:
                self.config = dataclasses.replace(kept, **variant)  # validated by __post_init__
                out.append(self(inputs))
            return out
        finally:
            self.config = kept

    @torch.no_grad()
    def predict(self, inputs: Any) -> Tensor:
        """(B,) predicted global class ids."""
        return self(inputs).argmax(dim=-1)

    def predict_task(self, inputs: Any) -> Tensor | None:
        """(B,) experience ids picked by the method's selection; None if it picks none."""
        return None

    @torch.no_grad()
    def predict_with_task(self, inputs: Any) -> tuple[Tensor, Tensor | None]:
        """:meth:`forward`'s logits (B, C) and :meth:`predict_task` (B,), from one selection
        where the method can share it."""
        return self(inputs), self.predict_task(inputs)

    def class_similarity(self, inputs: Any) -> Tensor | None:
        """(B,) the largest cosine between each input's feature and a seen class's mean feature.

        A distance to the training data, independent of the logits; the out-of-scope score
        ``max_logit+similarity`` adds it. None: the method keeps no class means.
        """
        return None

    def routing(self, inputs: Any) -> Routing | None:
        """The prompts the key index picks for each input (:class:`Routing`); None without a pool."""
        return None

    def routing_keys(self) -> tuple[Tensor, Tensor] | None:
        """The keys queries are matched against, to inspect: (K, W) and the experience of each
        (K,) long (-1: shared by every experience). W is the width of ``Routing.queries``.
        None: the method has no keys."""
        return None

    def key_search(self) -> dict[str, Any] | None:
        """What searches the keys the method selects with (``KeyIndex.describe``): its index
        spec, backend (faiss or torch) and key count; None for a method without keys."""
        index = getattr(self, "key_index", None) or getattr(getattr(self, "pool", None), "index", None)
        return None if index is None else index.describe()

    def input_prompts(self) -> tuple[Tensor, Tensor] | None:
        """The soft prompts put in front of the input tokens, to inspect: (N, L, D) and the
        experience that trained each (N,) long (-1: shared). None: the method has none, or its
        prompts are attention prefixes (dualprompt, coda_prompt), not token embeddings."""
        return None

    # ---------------------------------------------------------------- save / load
    def set_class_names(self, names: Sequence[str] | None) -> None:
        """Name the C classes (saved with the model; predictions then carry names)."""
        if names is not None:
            names = [str(n) for n in names]
            if len(names) != self.num_classes:
                raise ValueError(f"class_names must hold {self.num_classes} names, got {len(names)}")
        self.class_names = names

    def extra_state(self) -> dict[str, Any]:
        """JSON-serialisable method state beyond tensors (override when needed)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def save_pretrained(self, path: str | Path) -> None:
        """Write ``method.json`` and ``method.safetensors`` (trained tensors only) into ``path``."""
        save_method(self, path)

    @classmethod
    def from_pretrained(cls, path: str | Path, backbone: PromptedBackbone) -> ContinualMethod:
        """Rebuild a saved method on ``backbone``; refuses another method or another backbone."""
        return load_method(cls, path, backbone)

    def _after_load(self) -> None:
        """Rebuild derived state (e.g. search indexes) after tensors were loaded."""

