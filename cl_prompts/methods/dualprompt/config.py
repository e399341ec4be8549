"""Configuration of ``dualprompt``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import KeyedPromptConfig


@dataclass
class DualPromptConfig(KeyedPromptConfig):
    """DualPrompt (Wang et al., "DualPrompt: Complementary Prompting for Rehearsal-free Continual Learning", ECCV 2022).

    A shared G-prompt in the ``g_layers`` and one E-prompt per task in the ``e_layers``, both
    as attention prefixes (each prompt split into a key and a value prefix). E-prompts have
    keys, matched by cosine with the frozen query: training uses the true task's E-prompt and
    pulls its key to the query; at test the best-matching key picks the E-prompt. The
    G-prompt, the current task's E-prompt and key, and the current head rows train; earlier
    E-prompts and keys are frozen, and so is the backbone.

    The paper (ViT-B/16): G-prompt of length 5 in layers 0-1, E-prompts of length 20 in layers
    2-4, pull coefficient 1.0, classes outside the current task masked while training,
    prompts and keys U(-1, 1), Adam lr 0.005 (batch 128). ``preset="paper"`` is that
    configuration with the official code's optimisation (constant lr, gradient norm clipped
    at 1.0); its epochs and batch size are the runner's.

    Options (besides :class:`KeyedPromptConfig`'s ``lr``, ``weight_decay``, ``optimizer``,
    ``grad_clip``, ``lr_schedule``, ``prompt_init``, ``prompt_init_scale`` and ``index``):

    - ``g_layers``, ``e_layers``: 0-based layer indices of the G- and E-prompts, below the
      backbone's depth (MiniLM-L6 has 6 layers) and disjoint;
    - ``g_length``, ``e_length``: prefix lengths (per key and per value);
    - ``pull_coef``: the weight of the loss pulling the true task's key to the query;
    - ``mask_absent``: mask the logits of classes outside the current experience while training;
    - ``head_lr``: the classifier head's own learning rate (None: ``lr``);
    - ``key_init``: ``"as_prompts"`` (the paper) or ``"jax_uniform"`` U[0, 0.01) (the official
      JAX code's);
    - ``copy_previous_prompt``: start each new E-prompt as a copy of the previous task's (the
      official code's ``shared_prompt_pool``; the key stays freshly initialised).

    Defaults: the paper's, except the official code's keys (``key_init="jax_uniform"``) and
    E-prompt copy (``copy_previous_prompt``) and ``head_lr=0.03``, chosen on validation data;
    how, with the figures: docs/tuning.md#dualprompt.
    """

    PRESETS = {"paper": {
        "lr": 0.005, "optimizer": "adam", "weight_decay": 0.0, "grad_clip": 1.0, "lr_schedule": "constant",
        "g_layers": (0, 1), "e_layers": (2, 3, 4), "g_length": 5, "e_length": 20, "pull_coef": 1.0,
        "mask_absent": True, "head_lr": None, "prompt_init": "uniform", "prompt_init_scale": 1.0,
        "key_init": "as_prompts", "copy_previous_prompt": False}}

    lr: float = o.lr(0.005)
    g_layers: tuple[int, ...] = o.option((0, 1), "layers of the shared G-prompt (may be empty)",
                                         o.layer_indices(allow_empty=True))
    e_layers: tuple[int, ...] = o.option((2, 3, 4), "layers of the per-task E-prompts", o.layer_indices())
    g_length: int = o.prompt_length(5, "G-prompt prefix length (per key and per value)")
    e_length: int = o.prompt_length(20, "E-prompt prefix length (per key and per value)")
    pull_coef: float = o.pull_coef(1.0)
    mask_absent: bool = o.mask_absent()
    head_lr: float | None = o.head_lr(0.03)
    key_init: str = o.key_init("jax_uniform")
    copy_previous_prompt: bool = o.option(
        True, "start each new E-prompt as a copy of the previous task's (the official code's "
               "shared_prompt_pool; the key stays freshly initialised)", o.boolean)

    def __post_init__(self) -> None:
        super().__post_init__()
        overlap = sorted(set(self.g_layers) & set(self.e_layers))
        if overlap:
            raise ValueError(f"g_layers and e_layers must not share layers, both hold {overlap}")
