"""Configuration of ``finetune``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods.config import MethodConfig, check_bool, check_positive


@dataclass
class FinetuneConfig(MethodConfig):
    """Sequential fine-tuning of every backbone weight and the head (no continual-learning trick).

    Defaults: AdamW, lr 2e-5 for the encoder (the BERT fine-tuning range of Devlin et
    al. 2019), 1e-3 for the freshly initialised head, weight decay 0.01.

    Args:
        head_lr: learning rate of the head (``lr`` is the encoder's).
        mask_absent: mask the logits of classes outside the current experience while
            training. False by default: naive fine-tuning is the forgetting reference.
    """

    lr: float = 2e-5
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    head_lr: float = 1e-3
    mask_absent: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("head_lr", self.head_lr)
        check_bool("mask_absent", self.mask_absent)
