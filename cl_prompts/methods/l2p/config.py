"""Configuration of ``l2p``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods.common import FEATURES, PROMPT_INITS
from cl_prompts.methods.config import MethodConfig, check_bool, check_choice, check_positive


@dataclass
class L2PConfig(MethodConfig):
    """Learning to Prompt (Wang et al., "Learning to Prompt for Continual Learning", CVPR 2022).

    Paper defaults (its ViT-B/16 setting): a shared pool of M = 10 prompts of length
    L_p = 5, top N = 5 chosen per input by key match (cosine), prompts prepended to
    the input tokens, the classifier on the mean of the prompt positions' outputs,
    key-matching ("surrogate") loss with coefficient lambda = 0.1, logits of classes
    outside the current task masked while training, prompts and keys initialised
    U(-1, 1), Adam lr 0.03 (batch 128).

    Args:
        pool_size: M, prompts in the shared pool.
        prompt_length: L_p, tokens per prompt.
        top_k: N, prompts chosen per input (N * L_p tokens are prepended).
        pull_coef: lambda, weight of the key-matching loss.
        batchwise_selection: train-time batch-wise selection (L2P's option for
            datasets with a shared prompt; always per-sample at test).
        frequency_penalty: L2P's diversified selection while training (0 = off).
        feature: ``"prompt"`` (the paper) or ``"pooled"``.
        mask_absent: mask classes outside the current experience while training.
        prompt_init / prompt_init_scale: initialisation of prompts and keys.
        index: the pool's key index (``"flat"``, ``"torch"`` or a faiss factory string).
    """

    lr: float = 0.03
    pool_size: int = 10
    prompt_length: int = 5
    top_k: int = 5
    pull_coef: float = 0.1
    batchwise_selection: bool = False
    frequency_penalty: float = 0.0
    feature: str = "prompt"
    mask_absent: bool = True
    prompt_init: str = "uniform"
    prompt_init_scale: float = 1.0
    index: str = "flat"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("pool_size", "prompt_length", "top_k"):
            check_positive(name, getattr(self, name), integer=True)
        if self.top_k > self.pool_size:
            raise ValueError(f"top_k must be <= pool_size ({self.pool_size}), got {self.top_k}")
        check_positive("pull_coef", self.pull_coef, allow_zero=True)
        check_positive("frequency_penalty", self.frequency_penalty, allow_zero=True)
        check_bool("batchwise_selection", self.batchwise_selection)
        check_choice("feature", self.feature, FEATURES)
        check_bool("mask_absent", self.mask_absent)
        check_choice("prompt_init", self.prompt_init, PROMPT_INITS)
        check_positive("prompt_init_scale", self.prompt_init_scale)
