"""Avalanche integration: benchmarks, PromptPoolPlugin, PromptStrategy, evaluator.

The ``cl_prompts.integrations`` package is the only place that imports avalanche;
this module gathers its public names.
"""

from cl_prompts.integrations.benchmarks import (
    class_incremental_benchmark,
    clinc150_benchmark,
    text_benchmark,
)
from cl_prompts.integrations.evaluation import evaluate_accuracy, move_to, predict
from cl_prompts.integrations.strategy import (
    PromptPoolPlugin,
    PromptStrategy,
    default_evaluator,
    experience_classes,
    make_strategy,
)
from cl_prompts.integrations.vision import (
    imagenet_r_benchmark,
    split_cifar100_benchmark,
    vit_transforms,
)

__all__ = [
    "PromptPoolPlugin",
    "PromptStrategy",
    "class_incremental_benchmark",
    "clinc150_benchmark",
    "default_evaluator",
    "evaluate_accuracy",
    "experience_classes",
    "imagenet_r_benchmark",
    "make_strategy",
    "move_to",
    "predict",
    "split_cifar100_benchmark",
    "text_benchmark",
    "vit_transforms",
]
