"""Configuration of ``growing_pool``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods.common import FEATURES, PROMPT_INITS
from cl_prompts.methods.config import (
    MethodConfig,
    check_bool,
    check_choice,
    check_layers,
    check_positive,
)
from cl_prompts.methods.heads import HEAD_KINDS


@dataclass
class GrowingPoolConfig(MethodConfig):
    """Each experience adds its own prompts; a key per class routes inputs to them.

    No paper: the design of this engine. Three parts, each class-incremental by
    construction (old prompts are frozen, the rest are float64 sums):

    - prompts: each experience trains ``prompts_per_task`` prompts of its own (and a head
      over its classes, used only to train them) with the task known, as in prompt tuning;
    - keys and routing: a ridge classifier on random ReLU features of the frozen query
      (RanPAC-style, ``ridge``) whose readout column of each class is that class's key
      in the :class:`~cl_prompts.index.KeyIndex`; a query's nearest keys name the
      ``candidates`` tasks whose prompts are tried;
    - prediction: a second ridge classifier on random features of the *prompted*
      features (``prompted_ridge``), fitted once an experience ends on its samples passed
      through its own final prompts. For each candidate task, the score of its classes is
      the routing logit plus ``fusion_weight`` times the prompted logit; the best wins.

    Defaults: ``layers`` 4, ``candidates`` 2 and ``fusion_weight`` 0.5 were chosen by
    benchmarks/tune.py on validation data: mean 94.44 over CLINC150's val (96.87) and
    HWU64's held-out 10% (92.01), against 94.31 for ``ranpac`` with its own chosen
    settings (the same 4 layers); 1 candidate: 94.33 at best; the last layer alone
    (``layers`` 1): 94.08 at best; every trial in
    benchmarks/results/tune-growing_pool/tune.json. Those trials ran with one prompt of
    ``8 * layers`` tokens per task (an 8-token prompt as wide as the 4-layer feature,
    read as 32 token embeddings), hence the default of one 32-token prompt. The rest
    (lr 1e-2, the two ridges, 5,000 random features) come from an exploration on the same
    validation splits (docs/methods.md).

    Args:
        prompts_per_task / prompt_length: prompts owned by each task and tokens per prompt.
        ridge: ridge of the routing classifier (frozen query); prompted_ridge: of the
            prompted one. Both in the units of the Gram matrix (sums over samples).
        projection_dim: random features of each ridge classifier (memory: two float64
            (M, M) Gram matrices).
        layers: the routing and the prompted readouts read the pooled outputs of the last
            ``layers`` layers (each at unit length, concatenated); the head that trains
            the prompts reads ``feature`` of the last layer.
        candidates: tasks tried per input (each costs one prompted forward pass at test).
        fusion_weight: weight of the prompted logits against the routing logits.
        init_from_previous: a new task's prompts start from the previous task's values.
        feature: ``"pooled"`` (pooling of the real tokens) or ``"prompt"`` (the prompt positions).
        head / head_scale: the head that trains the prompts (``"cosine"`` or ``"linear"``).
        prompt_init / prompt_init_scale: initialisation of the first task's prompts.
        index: the key index (``"flat"``, ``"torch"`` or a faiss factory string).
    """

    lr: float = 1e-2
    prompts_per_task: int = 1
    prompt_length: int = 32
    ridge: float = 300.0
    prompted_ridge: float = 100.0
    projection_dim: int = 5000
    candidates: int = 2
    layers: int = 4
    fusion_weight: float = 0.5
    init_from_previous: bool = True
    feature: str = "pooled"
    head: str = "cosine"
    head_scale: float = 16.0
    prompt_init: str = "uniform"
    prompt_init_scale: float = 1.0
    index: str = "flat"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("prompts_per_task", self.prompts_per_task, integer=True)
        check_positive("prompt_length", self.prompt_length, integer=True)
        check_positive("ridge", self.ridge)
        check_positive("prompted_ridge", self.prompted_ridge)
        check_positive("projection_dim", self.projection_dim, integer=True)
        check_positive("candidates", self.candidates, integer=True)
        check_layers(self.layers)
        check_positive("fusion_weight", self.fusion_weight, allow_zero=True)
        check_bool("init_from_previous", self.init_from_previous)
        check_choice("feature", self.feature, FEATURES)
        check_choice("head", self.head, HEAD_KINDS)
        check_positive("head_scale", self.head_scale)
        check_choice("prompt_init", self.prompt_init, PROMPT_INITS)
        check_positive("prompt_init_scale", self.prompt_init_scale)
