"""Configuration of ``growing_pool``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import KeyedPromptConfig


@dataclass
class GrowingPoolConfig(KeyedPromptConfig):
    """Each experience adds its own prompts; a key per class routes inputs to them.

    No paper: the design of this engine. Three parts, each class-incremental by
    construction (old prompts are frozen, the rest are float64 sums):

    - prompts: each experience trains ``prompts_per_task`` prompts of its own (and a head
      over its classes, used only to train them) with the task known, as in prompt tuning;
    - keys and routing: a ridge classifier on random ReLU features of the frozen query
      (RanPAC-style, ``ridge``) whose readout column of each class is that class's key
      in the :class:`~cl_prompts.index.KeyIndex`; a query's nearest keys name the
      ``candidates`` tasks whose prompts are tried;
    - prediction: a second ridge classifier on random features of the *prompted*
      features (``prompted_ridge``), fitted once an experience ends on its samples passed
      through its own final prompts. For each candidate task, the score of its classes is
      the routing logit plus ``fusion_weight`` times the prompted logit; the best wins.

    Defaults were chosen on validation data only (CLINC150's val split, HWU64's held-out
    10%): docs/tuning.md#growing_pool has the grids and their figures. What the learned
    prompts add over untrained ones and over a prompt-free ensemble: docs/prompt_value.md.
    The routing and the prompted readouts read the last ``layers`` layers; the head that
    trains the prompts reads ``feature`` of the last.
    """

    lr: float = o.lr(1e-2)
    prompts_per_task: int = o.option(1, "prompts owned by each task", o.positive_int)
    prompt_length: int = o.prompt_length(8)
    ridge: float = o.option(100.0, "ridge of the routing classifier (frozen query), in the units of "
                                   "the Gram matrix (sums over samples)", o.positive)
    prompted_ridge: float = o.option(100.0, "ridge of the prompted classifier", o.positive)
    projection_dim: int = o.projection_dim(10000)
    candidates: int = o.option(2, "tasks tried per input (each costs one prompted forward pass at test)",
                               o.positive_int)
    layers: int = o.feature_layers(4)
    fusion_weight: float = o.option(0.5, "weight of the prompted logits against the routing logits",
                                    o.non_negative)
    cross_task_passes: int = o.option(
        1, "when an experience ends, also pass each of its samples through the prompts of this many "
           "earlier tasks the routing ranks first for it, labelled with its own class: the prompted "
           "readout then learns to score a wrong task's classes low on such inputs (costs this many "
           "extra forward passes per sample, once)", o.non_negative_int)
    init_from_previous: bool = o.option(True, "a new task's prompts start from the previous task's values",
                                        o.boolean)
    init_from_nearest: bool = o.option(
        False, "prompt recycling: a new task's prompts start as a copy of those of the earlier task "
               "its first training batch is routed to most (the nearest keys); before that batch "
               "they start as init_from_previous says", o.boolean)
    feature: str = o.feature("pooled")
    head: str = o.head("cosine")
    head_scale: float = o.head_scale()
