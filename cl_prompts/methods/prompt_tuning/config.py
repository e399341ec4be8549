"""Configuration of ``prompt_tuning``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods.common import FEATURES, PROMPT_INITS
from cl_prompts.methods.config import MethodConfig, check_bool, check_choice, check_positive


@dataclass
class PromptTuningConfig(MethodConfig):
    """One soft prompt shared by every experience, trained sequentially with the head.

    Paper (Lester et al., "The Power of Scale for Parameter-Efficient Prompt Tuning",
    EMNLP 2021): 100 prompt tokens, Adafactor lr 0.3 on T5. The encoder-classifier
    defaults here (20 tokens, Adam lr 1e-2, masked absent classes as in L2P) keep it
    comparable with the pool methods; no key, no pool: it is the "no pool" reference.

    Args:
        prompt_length: number of prompt tokens P.
        prompt_init: ``"uniform"`` (U(-s, s)) or ``"normal"`` (N(0, s^2)); s = ``prompt_init_scale``.
        feature: classify ``"pooled"`` (the backbone's pooling of the real tokens) or
            ``"prompt"`` (mean of the prompt positions, as L2P).
        mask_absent: mask classes outside the current experience while training.
    """

    lr: float = 1e-2
    prompt_length: int = 20
    prompt_init: str = "uniform"
    prompt_init_scale: float = 1.0
    feature: str = "pooled"
    mask_absent: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("prompt_length", self.prompt_length, integer=True)
        check_choice("prompt_init", self.prompt_init, PROMPT_INITS)
        check_positive("prompt_init_scale", self.prompt_init_scale)
        check_choice("feature", self.feature, FEATURES)
        check_bool("mask_absent", self.mask_absent)
