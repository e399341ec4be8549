"""Configuration of ``prompt_tuning``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig


@dataclass
class PromptTuningConfig(MethodConfig):
    """One soft prompt shared by every experience, trained sequentially with the head.

    Prompt tuning (Lester et al., "The Power of Scale for Parameter-Efficient Prompt Tuning",
    EMNLP 2021) as a continual baseline: no key and no pool, the "no pool" reference for the
    pool methods. The prompt and the current experience's head rows train; the backbone is
    frozen. The paper trains 100 prompt tokens with Adafactor lr 0.3 on T5; the settings here
    (20 tokens, Adam lr 1e-2, masked absent classes as in L2P) keep it comparable with the pool
    methods.

    Options (besides :class:`MethodConfig`'s ``weight_decay``, ``optimizer``, ``grad_clip`` and
    ``lr_schedule``):

    - ``lr``: learning rate of the prompt;
    - ``prompt_length``: P, tokens of the prompt;
    - ``prompt_init``, ``prompt_init_scale``: ``"uniform"`` U(-s, s) or ``"normal"`` N(0, s^2);
    - ``feature``: what the classifier reads, ``"pooled"`` real tokens or ``"prompt"`` positions;
    - ``mask_absent``: mask the logits of classes outside the current experience while training;
    - ``head_lr``: the classifier head's own learning rate (None: ``lr``).

    Defaults: as above, with ``head_lr=0.03`` chosen on validation data; how, with the
    figures: docs/tuning.md#prompt_tuning.
    """

    lr: float = o.lr(1e-2)
    prompt_length: int = o.prompt_length(20, "P, tokens of the prompt")
    prompt_init: str = o.prompt_init()
    prompt_init_scale: float = o.prompt_init_scale()
    feature: str = o.feature("pooled")
    mask_absent: bool = o.mask_absent()
    head_lr: float | None = o.head_lr(0.03)
