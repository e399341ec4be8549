"""Configuration of ``coda_prompt``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods.config import MethodConfig, as_int_tuple, check_bool, check_positive


@dataclass
class CodaPromptConfig(MethodConfig):
    """CODA-Prompt (Smith et al., "CODA-Prompt: COntinual Decomposed Attention-based
    Prompting for Rehearsal-Free Continual Learning", CVPR 2023).

    Paper defaults (ViT-B/16, 10 tasks): in each of layers 0-4 a pool of 100 prompt
    components (10 new per task), each with a key and an attention vector; the prompt
    of an input is the sum of the components weighted by
    ``cos(query * attention_m, key_m)``; prompt length 8, split into a key and a value
    prefix of 4; new components (prompts, keys, attention vectors) initialised by
    Gram-Schmidt orthogonal to all earlier ones; old components frozen; the optional
    orthogonality penalty ``mu * sum ||X X^T - I||^2`` is 0 in the released configs;
    classes outside the current task masked while training; Adam lr 1e-3 (batch 128,
    cosine schedule; the runner owns schedules).

    Args:
        layers: layer indices (0-based) that get prefixes; below the backbone's depth.
        components_per_task: new components per layer per experience.
        prompt_length: tokens per component (even: half key prefix, half value prefix).
        ortho_mu: weight of the orthogonality penalty.
        mask_absent: mask classes outside the current experience while training.
    """

    layers: tuple[int, ...] = (0, 1, 2, 3, 4)
    components_per_task: int = 10
    prompt_length: int = 8
    ortho_mu: float = 0.0
    mask_absent: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.layers = as_int_tuple("layers", self.layers)
        check_positive("components_per_task", self.components_per_task, integer=True)
        check_positive("prompt_length", self.prompt_length, integer=True)
        if self.prompt_length % 2:
            raise ValueError(f"prompt_length must be even (key and value halves), got {self.prompt_length}")
        check_positive("ortho_mu", self.ortho_mu, allow_zero=True)
        check_bool("mask_absent", self.mask_absent)
