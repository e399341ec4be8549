"""Configuration of ``l2p``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import KeyedPromptConfig


@dataclass
class L2PConfig(KeyedPromptConfig):
    """Learning to Prompt (Wang et al., "Learning to Prompt for Continual Learning", CVPR 2022).

    A shared pool of prompts, each with a key. Every input takes the ``top_k`` prompts whose
    keys best match its frozen query (cosine) and puts them in front of its tokens; a
    key-matching ("surrogate") loss pulls the chosen keys to the query. Prompts, keys and the
    current experience's head rows train; the backbone is frozen.

    The paper (its ViT-B/16 setting): M = 10 prompts of length L_p = 5, top N = 5,
    surrogate-loss coefficient lambda = 0.1, the classifier on the mean of the prompt
    positions' outputs, logits of classes outside the current task masked while training,
    prompts and keys U(-1, 1), Adam lr 0.03 (batch 128). ``preset="paper"`` is that
    configuration with the official code's optimisation (constant lr, gradient norm clipped
    at 1.0); its epochs and batch size are the runner's.

    Options (besides :class:`KeyedPromptConfig`'s ``lr``, ``weight_decay``, ``optimizer``,
    ``lr_schedule``, ``prompt_init``, ``prompt_init_scale`` and ``index``):

    - ``pool_size``, ``prompt_length``, ``top_k``: M, L_p and N;
    - ``pull_coef``: lambda, the weight of the key-matching loss;
    - ``batchwise_selection``: L2P's batch-wise selection while training (per sample at test);
    - ``frequency_penalty``: L2P's diversified selection (a prompt's score lowered by its share
      of the earlier tasks' selections; 0 = off);
    - ``feature``: what the classifier reads, ``"prompt"`` (the paper) or ``"pooled"`` (the
      pooled real tokens);
    - ``mask_absent``: mask the logits of classes outside the current experience while training;
    - ``head_lr``: the classifier head's own learning rate (None: ``lr``);
    - ``key_init``: ``"as_prompts"`` (the paper) or ``"jax_uniform"`` U[0, 0.01) (the official
      JAX code's);
    - ``grad_clip``: clip the total gradient norm before each step (None: off).

    Defaults: the paper's, except the classifier on the pooled real tokens
    (``feature="pooled"``), ``head_lr=0.01`` and the official code's clipping
    (``grad_clip=1.0``), chosen on validation data; how, with the figures: docs/tuning.md#l2p.
    """

    PRESETS = {"paper": {
        "lr": 0.03, "optimizer": "adam", "weight_decay": 0.0, "grad_clip": 1.0, "lr_schedule": "constant",
        "pool_size": 10, "prompt_length": 5, "top_k": 5, "pull_coef": 0.1, "batchwise_selection": False,
        "frequency_penalty": 0.0, "feature": "prompt", "mask_absent": True, "head_lr": None,
        "prompt_init": "uniform", "prompt_init_scale": 1.0, "key_init": "as_prompts"}}

    lr: float = o.lr(0.03)
    pool_size: int = o.option(10, "M, prompts in the shared pool", o.positive_int)
    prompt_length: int = o.prompt_length(5, "L_p, tokens per prompt")
    top_k: int = o.option(5, "N, prompts chosen per input (N * L_p tokens are prepended)", o.positive_int)
    pull_coef: float = o.pull_coef(0.1)
    batchwise_selection: bool = o.option(
        False, "train-time batch-wise selection (L2P's option for datasets with a shared prompt; "
               "always per-sample at test)", o.boolean)
    frequency_penalty: float = o.option(
        0.0, "L2P's diversified selection while training: a prompt's score is lowered by this "
             "times its share of the earlier tasks' selections (0 = off)", o.non_negative)
    feature: str = o.feature("pooled")
    mask_absent: bool = o.mask_absent()
    head_lr: float | None = o.head_lr(0.01)
    key_init: str = o.key_init()
    grad_clip: float | None = o.grad_clip(1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.top_k > self.pool_size:
            raise ValueError(f"top_k must be <= pool_size ({self.pool_size}), got {self.top_k}")
