"""Configuration of ``joint``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig


@dataclass
class JointConfig(MethodConfig):
    """A linear probe on frozen features trained with every earlier sample replayed.

    A reference for the gradient-trained methods (what full replay buys a linear probe), not an
    upper bound: the closed-form methods (``ranpac``, ``slda``, ``ncm``) are solved exactly on all
    the data seen, so their class-incremental readout already equals their joint one, and they
    score above it. Fed one experience holding every class, it is exactly a joint linear probe.
    Fed the experiences one by one, it keeps the frozen features of every training sample it has
    seen (deduplicated, D floats each) and every training batch is joined by replayed samples
    from the earlier experiences, so the model trains on the union of the data (not continual:
    it stores everything). No paper to follow.

    Options (besides :class:`MethodConfig`'s ``weight_decay``, ``optimizer``, ``grad_clip`` and
    ``lr_schedule``):

    - ``lr``: learning rate of the head;
    - ``head``: ``"linear"`` or ``"cosine"``; ``head_scale``: the cosine head's temperature;
    - ``replay_ratio``: replayed samples per current sample in each training batch.

    Defaults: Adam, lr 1e-2, a cosine head, chosen on validation data; how, with the figures:
    docs/tuning.md#joint.
    """

    lr: float = o.lr(1e-2)
    head: str = o.head("cosine")
    head_scale: float = o.head_scale()
    replay_ratio: float = o.option(1.0, "replayed samples per current sample in each training batch",
                                   o.positive)
