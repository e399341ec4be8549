"""Configuration of ``joint``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig


@dataclass
class JointConfig(MethodConfig):
    """A linear probe on frozen features trained with every earlier sample replayed.

    A reference for the gradient-trained methods (what full replay buys a linear probe),
    not an upper bound: the closed-form methods (``ranpac``, ``slda``, ``ncm``) are solved
    exactly on all the data seen, so their class-incremental readout already equals their
    joint one, and they score above it.

    Defaults: Adam, lr 1e-2, a cosine head, chosen on validation data (benchmarks/tune.py,
    seed 0, one epoch fed experience by experience; mean val accuracy over CLINC150 and
    HWU64): 89.29 (91.33 / 87.24) against 88.76 (90.80 / 86.73) for the linear head; lr
    3e-3 and 3e-2 were lower.
    Fed one experience holding every class, it is exactly a joint linear probe. Fed
    the experiences one by one, it keeps the frozen features of every training
    sample it has seen (deduplicated, D floats each) and every training batch is
    joined by an equally large batch drawn from the earlier experiences, so the
    model trains on the union of the data (not continual: it stores everything).
    """

    lr: float = o.lr(1e-2)
    head: str = o.head("cosine")
    head_scale: float = o.head_scale()
    replay_ratio: float = o.option(1.0, "replayed samples per current sample in each training batch",
                                   o.positive)
