"""Configuration of ``growing_pool``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods.common import FEATURES, PROMPT_INITS
from cl_prompts.methods.config import MethodConfig, check_bool, check_choice, check_positive
from cl_prompts.methods.heads import HEAD_KINDS

KEY_MODES = ("class_centroids", "task_centroid", "samples")


@dataclass
class GrowingPoolConfig(MethodConfig):
    """Each experience adds its own prompts, plus many keys that point to them.

    No paper: the design of this engine. Its defaults follow the CLINC150-10 trial
    of issue 4 (frozen MiniLM queries): task identification is the bottleneck, and
    one key per class (the class centroids of the frozen queries, nearest key's
    task wins) picked the right task for 96.8% of test inputs, against 83.1% for
    one centroid key per task. So:

    - training an experience uses its own prompts (the task is known while
      training) and collects the frozen queries of its samples;
    - at ``end_experience`` the keys are computed from them (``key_mode``) and added
      to a FAISS-backed :class:`~cl_prompts.index.KeyIndex`; the prompts freeze;
    - at test the nearest key(s) over all tasks pick the task; its prompts are
      prepended and (``restrict_to_task``) only its classes compete.

    Args:
        prompts_per_task: pool prompts owned by each task (all are used together).
        prompt_length: tokens per prompt (the task prepends ``prompts_per_task * prompt_length``).
        key_mode: ``"class_centroids"`` (one key per class, default),
            ``"task_centroid"`` (one key per task) or ``"samples"`` (every training
            query is a key; use ``vote_k`` > 1 for a k-NN vote).
        vote_k: nearest keys that vote for a task (ties: the higher summed score). Keep 1
            with class centroids (3 neighbours of one other task outvote the right one:
            task identification fell from 96.8% to 90.9%); 10 suits ``"samples"``.
        restrict_to_task: at test, only the picked task's classes compete.
        init_from_previous: a new task's prompts start from the previous task's values.
        feature: ``"pooled"`` (pooling of the real tokens) or ``"prompt"`` (the prompt positions).
        head: ``"cosine"`` (default: 93.6 vs 93.1 for ``"linear"`` in the CLINC150-10
            trial of docs/methods.md) or ``"linear"``; head_scale: the cosine temperature.
        prompt_init / prompt_init_scale: initialisation of the first task's prompts.
        index: the key index (``"flat"``, ``"torch"`` or a faiss factory string).
        Adam, lr 1e-2.
    """

    lr: float = 1e-2
    prompts_per_task: int = 1
    prompt_length: int = 8
    key_mode: str = "class_centroids"
    vote_k: int = 1
    restrict_to_task: bool = True
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
        check_choice("key_mode", self.key_mode, KEY_MODES)
        check_positive("vote_k", self.vote_k, integer=True)
        check_bool("restrict_to_task", self.restrict_to_task)
        check_bool("init_from_previous", self.init_from_previous)
        check_choice("feature", self.feature, FEATURES)
        check_choice("head", self.head, HEAD_KINDS)
        check_positive("head_scale", self.head_scale)
        check_choice("prompt_init", self.prompt_init, PROMPT_INITS)
        check_positive("prompt_init_scale", self.prompt_init_scale)
