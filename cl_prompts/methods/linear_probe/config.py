"""Configuration of ``linear_probe``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig


@dataclass
class LinearProbeConfig(MethodConfig):
    """A classifier head trained sequentially on the frozen query features.

    Defaults: Adam, lr 1e-2, no weight decay (no paper to follow; on CLINC150-10 with
    one epoch lr 1e-2 reached 87.4 against 80.2 for 1e-3). ``mask_absent=True`` is
    the masked baseline of the CLINC150 README (89.2), ``False`` the
    catastrophic-forgetting one (29.9). With masking old classes' rows get no gradient
    and are frozen outright; without it every class seen so far competes and every row
    keeps training.
    """

    lr: float = o.lr(1e-2)
    mask_absent: bool = o.mask_absent()
    head: str = o.head("linear")
    head_scale: float = o.head_scale()
