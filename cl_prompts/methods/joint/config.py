"""Configuration of ``joint``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig


@dataclass
class JointConfig(MethodConfig):
    """A linear probe on frozen features trained on all the data: the upper bound.

    Defaults: Adam, lr 1e-2 (on CLINC150-10, one epoch fed experience by experience,
    90.4 against 87.8 for lr 1e-3; the README's converged joint probe reaches 92.7).
    Fed one experience holding every class, it is exactly a joint linear probe. Fed
    the experiences one by one, it keeps the frozen features of every training
    sample it has seen (deduplicated, D floats each) and every training batch is
    joined by an equally large batch drawn from the earlier experiences, so the
    model trains on the union of the data (not continual: it stores everything).
    """

    lr: float = o.lr(1e-2)
    head: str = o.head("linear")
    head_scale: float = o.head_scale()
    replay_ratio: float = o.option(1.0, "replayed samples per current sample in each training batch",
                                   o.positive)
