"""Configuration of ``finetune``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig


@dataclass
class FinetuneConfig(MethodConfig):
    """Sequential fine-tuning of every backbone weight and the head (no continual-learning trick).

    Naive fine-tuning, the forgetting reference: the method trains a private copy of the
    backbone (saved with the model) and the head, experience after experience, with no masking
    by default. No continual-learning paper to follow; the encoder's learning rate is in the BERT
    fine-tuning range of Devlin et al. 2019.

    Options (besides :class:`MethodConfig`'s ``grad_clip`` and ``lr_schedule``):

    - ``lr``: learning rate of the encoder;
    - ``weight_decay``, ``optimizer``: AdamW's decoupled weight decay by default;
    - ``head_lr``: learning rate of the freshly initialised head;
    - ``mask_absent``: mask the logits of classes outside the current experience while training.

    Defaults: AdamW, lr 2e-5 for the encoder, 1e-3 for the head, weight decay 0.01, no masking;
    kept on validation data against slower rates; how, with the figures:
    docs/tuning.md#finetune.
    """

    lr: float = o.option(2e-5, "learning rate of the encoder", o.positive)
    weight_decay: float = o.weight_decay(0.01)
    optimizer: str = o.optimizer("adamw")
    head_lr: float = o.option(1e-3, "learning rate of the head", o.positive)
    mask_absent: bool = o.mask_absent(False)
