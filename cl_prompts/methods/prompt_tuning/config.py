"""Configuration of ``prompt_tuning``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig


@dataclass
class PromptTuningConfig(MethodConfig):
    """One soft prompt shared by every experience, trained sequentially with the head.

    Paper (Lester et al., "The Power of Scale for Parameter-Efficient Prompt Tuning",
    EMNLP 2021): 100 prompt tokens, Adafactor lr 0.3 on T5. The encoder-classifier
    defaults here (20 tokens, Adam lr 1e-2, masked absent classes as in L2P) keep it
    comparable with the pool methods; no key, no pool: it is the "no pool" reference.
    ``head_lr=0.03`` was chosen on validation data (benchmarks/tune.py, seed 0, one
    epoch): mean val accuracy over CLINC150 and HWU64 78.28 (81.50 / 75.06) against 77.50
    (80.13 / 74.87) with the head at the prompt's lr; 5 prompt tokens gave 78.10 / 77.67.
    """

    lr: float = o.lr(1e-2)
    prompt_length: int = o.prompt_length(20, "P, tokens of the prompt")
    prompt_init: str = o.prompt_init()
    prompt_init_scale: float = o.prompt_init_scale()
    feature: str = o.feature("pooled")
    mask_absent: bool = o.mask_absent()
    head_lr: float | None = o.head_lr(0.03)
