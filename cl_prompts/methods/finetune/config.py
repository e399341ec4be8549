"""Configuration of ``finetune``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig


@dataclass
class FinetuneConfig(MethodConfig):
    """Sequential fine-tuning of every backbone weight and the head (no continual-learning trick).

    Defaults: AdamW, lr 2e-5 for the encoder (the BERT fine-tuning range of Devlin et
    al. 2019), 1e-3 for the freshly initialised head, weight decay 0.01; kept on
    validation data against slower rates (mean val accuracy over CLINC150 and HWU64
    14.55; the best of lr {2e-5, 5e-6} x head_lr {1e-3, 1e-4}: benchmarks/tune.py,
    docs/methods.md). No masking by default: naive fine-tuning is the forgetting reference.
    """

    lr: float = o.option(2e-5, "learning rate of the encoder", o.positive)
    weight_decay: float = o.weight_decay(0.01)
    optimizer: str = o.optimizer("adamw")
    head_lr: float = o.option(1e-3, "learning rate of the head", o.positive)
    mask_absent: bool = o.mask_absent(False)
