"""Configuration of ``coda_prompt``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig


@dataclass
class CodaPromptConfig(MethodConfig):
    """CODA-Prompt (Smith et al., "CODA-Prompt: COntinual Decomposed Attention-based Prompting for Rehearsal-Free Continual Learning", CVPR 2023).

    In each of the ``layers``, a pool of prompt components, each with a key and an attention
    vector. The prompt of an input is the sum of the components weighted by
    ``cos(query * attention_m, key_m)`` (no top-k choice), split into a key and a value prefix
    of that layer's attention. Each task adds ``components_per_task`` components per layer,
    initialised by Gram-Schmidt orthogonal to all earlier ones; they and the current head rows
    train, and earlier components are frozen, as is the backbone.

    The paper (ViT-B/16, 10 tasks): layers 0-4, 100 components per layer (10 new per task),
    prompt length 8, the orthogonality penalty ``mu * sum ||X X^T - I||^2`` at 0 in the released
    configs, classes outside the current task masked while training, Adam lr 1e-3 (batch 128),
    cosine schedule. ``preset="paper"`` is this configuration (its epochs and batch size are the
    runner's).

    Options (besides :class:`MethodConfig`'s ``lr``, ``weight_decay``, ``optimizer`` and
    ``grad_clip``):

    - ``lr_schedule``: ``"cosine"`` (the paper) or ``"constant"`` within each experience;
    - ``layers``: 0-based indices of the prompted layers, below the backbone's depth;
    - ``components_per_task``: new components per layer per experience;
    - ``prompt_length``: tokens per component (even: half key prefix, half value prefix);
    - ``ortho_mu``: mu, the weight of the orthogonality penalty;
    - ``mask_absent``: mask the logits of classes outside the current experience while training;
    - ``head_lr``: the classifier head's own learning rate (None: ``lr``).

    Defaults: the paper's, with the head at ``head_lr=0.01``, chosen on validation data; how,
    with the figures: docs/tuning.md#coda_prompt.
    """

    PRESETS = {"paper": {
        "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0, "grad_clip": None, "lr_schedule": "cosine",
        "layers": (0, 1, 2, 3, 4), "components_per_task": 10, "prompt_length": 8, "ortho_mu": 0.0,
        "mask_absent": True, "head_lr": None}}

    lr_schedule: str = o.lr_schedule("cosine")
    layers: tuple[int, ...] = o.option((0, 1, 2, 3, 4), "layer indices (0-based) that get prefixes; "
                                       "below the backbone's depth", o.layer_indices())
    components_per_task: int = o.option(10, "new components per layer per experience", o.positive_int)
    prompt_length: int = o.prompt_length(8, "tokens per component (even: half key prefix, half value prefix)")
    ortho_mu: float = o.option(0.0, "weight of the orthogonality penalty", o.non_negative)
    mask_absent: bool = o.mask_absent()
    head_lr: float | None = o.head_lr(0.01)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.prompt_length % 2:
            raise ValueError(f"prompt_length must be even (key and value halves), got {self.prompt_length}")
