"""Configuration of ``linear_probe``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig


@dataclass
class LinearProbeConfig(MethodConfig):
    """A classifier head trained sequentially on the frozen query features.

    Defaults: Adam, lr 1e-2, no weight decay, a cosine head (no paper to follow; chosen on
    validation data, benchmarks/tune.py, seed 0, one epoch: mean val accuracy over
    CLINC150 and HWU64 84.01 (87.20 / 80.82) against 83.02 (86.53 / 79.50) for the linear
    head; lr 3e-3, 3e-2 and 1e-1 and a cosine schedule were lower). ``mask_absent=True`` is
    the masked baseline of the CLINC150 README (89.2), ``False`` the
    catastrophic-forgetting one (29.9). With masking old classes' rows get no gradient
    and are frozen outright; without it every class seen so far competes and every row
    keeps training.
    """

    lr: float = o.lr(1e-2)
    mask_absent: bool = o.mask_absent()
    head: str = o.head("cosine")
    head_scale: float = o.head_scale()
