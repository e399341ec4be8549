"""Avalanche integration: benchmarks, PromptPoolPlugin, PromptStrategy, evaluator.

The ``cl_prompts.integrations`` package is the only place that imports avalanche;
this module gathers its public names.
"""

from cl_prompts.integrations.accuracy import evaluate_accuracy, predict
from cl_prompts.integrations.benchmarks import (
    benchmark_from_class_groups,
    clinc150_benchmark,
    text_benchmark,
)
from cl_prompts.integrations.evaluators import results_evaluator
from cl_prompts.integrations.plugin import PromptPoolPlugin, experience_classes
from cl_prompts.integrations.strategy import PromptStrategy, make_strategy
from cl_prompts.integrations.vision import (
    imagenet_r_benchmark,
    split_cifar100_benchmark,
    vit_transforms,
)

__all__ = [
    "PromptPoolPlugin",
    "PromptStrategy",
    "benchmark_from_class_groups",
    "clinc150_benchmark",
    "evaluate_accuracy",
    "experience_classes",
    "imagenet_r_benchmark",
    "make_strategy",
    "predict",
    "results_evaluator",
    "split_cifar100_benchmark",
    "text_benchmark",
    "vit_transforms",
]
