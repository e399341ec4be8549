"""Configuration of ``dualprompt``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods.common import PROMPT_INITS
from cl_prompts.methods.config import (
    MethodConfig,
    as_int_tuple,
    check_bool,
    check_choice,
    check_positive,
)


@dataclass
class DualPromptConfig(MethodConfig):
    """DualPrompt (Wang et al., "DualPrompt: Complementary Prompting for Rehearsal-free
    Continual Learning", ECCV 2022).

    Paper defaults (ViT-B/16): a shared G-prompt of length 5 in layers 0-1 and one
    E-prompt of length 20 per task in layers 2-4, both in prefix-tuning mode (each
    prompt split into a key and a value prefix); E-prompts have keys, matched by cosine
    with the frozen query; training uses the true task's E-prompt and pulls its key
    to the query (coefficient 1.0); at test the best-matching key picks the E-prompt.
    Classes outside the current task are masked while training; prompts and keys
    initialised U(-1, 1); Adam lr 0.005 (batch 128).

    Args:
        g_layers / e_layers: layer indices (0-based) of the G- and E-prompts; must be
            below the backbone's depth (MiniLM-L6 has 6 layers).
        g_length / e_length: prefix length of each (per key and per value).
        pull_coef: weight of the key-matching loss.
        mask_absent: mask classes outside the current experience while training.
        prompt_init / prompt_init_scale: initialisation of prompts and keys.
        index: the E-prompt pool's key index.
    """

    lr: float = 0.005
    g_layers: tuple[int, ...] = (0, 1)
    e_layers: tuple[int, ...] = (2, 3, 4)
    g_length: int = 5
    e_length: int = 20
    pull_coef: float = 1.0
    mask_absent: bool = True
    prompt_init: str = "uniform"
    prompt_init_scale: float = 1.0
    index: str = "flat"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.g_layers = as_int_tuple("g_layers", self.g_layers, allow_empty=True)
        self.e_layers = as_int_tuple("e_layers", self.e_layers)
        overlap = sorted(set(self.g_layers) & set(self.e_layers))
        if overlap:
            raise ValueError(f"g_layers and e_layers must not share layers, both hold {overlap}")
        check_positive("g_length", self.g_length, integer=True)
        check_positive("e_length", self.e_length, integer=True)
        check_positive("pull_coef", self.pull_coef, allow_zero=True)
        check_bool("mask_absent", self.mask_absent)
        check_choice("prompt_init", self.prompt_init, PROMPT_INITS)
        check_positive("prompt_init_scale", self.prompt_init_scale)
