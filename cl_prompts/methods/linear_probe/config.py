"""Configuration of ``linear_probe``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig


@dataclass
class LinearProbeConfig(MethodConfig):
    """A classifier head trained sequentially on the frozen query features.

    A standard baseline, no paper to follow. With ``mask_absent=True`` old classes' rows get no
    gradient and are frozen outright; without it every class seen so far competes and every
    row keeps training (catastrophic forgetting). The backbone is frozen.

    Options (besides :class:`MethodConfig`'s ``weight_decay``, ``optimizer``, ``grad_clip`` and
    ``lr_schedule``):

    - ``lr``: learning rate of the head;
    - ``mask_absent``: mask the logits of classes outside the current experience while training;
    - ``head``: ``"linear"`` or ``"cosine"``; ``head_scale``: the cosine head's temperature.

    Defaults: Adam, lr 1e-2, no weight decay, a cosine head, masking on, chosen on validation
    data; how, with the figures: docs/tuning.md#linear_probe.
    """

    lr: float = o.lr(1e-2)
    mask_absent: bool = o.mask_absent()
    head: str = o.head("cosine")
    head_scale: float = o.head_scale()
