"""Vision benchmarks as Avalanche streams (Split CIFAR-100, ImageNet-R), over ``cl_prompts.data.images``."""

from __future__ import annotations

import os
from typing import Any

from avalanche.benchmarks.scenarios.generic_scenario import CLScenario

from cl_prompts.backbones.loading import image_preprocessing, image_statistics
from cl_prompts.data.images import (
    IMAGENET_R_URL,
    VIT_MEAN,
    VIT_STD,
    ImageDataset,
    load_image_benchmark,
    vit_transforms,
)
from cl_prompts.integrations.benchmarks import benchmark_from_class_groups

__all__ = [
    "IMAGENET_R_URL", "VIT_MEAN", "VIT_STD", "image_statistics", "imagenet_r_benchmark",
    "scenario_from_images", "split_cifar100_benchmark", "vit_transforms",
]


def scenario_from_images(ds: ImageDataset) -> CLScenario:
    """The Avalanche benchmark of an :class:`ImageDataset` (one experience per class group)."""
    return benchmark_from_class_groups(ds.train, ds.train_labels, ds.test, ds.test_labels, ds.experiences,
                                       class_names=ds.class_names, name=ds.name)


def split_cifar100_benchmark(
    root: str | os.PathLike | None = None,
    backbone: Any = None,
    num_experiences: int = 10,
    class_order_seed: int | None = None,
    *,
    image_size: int | None = None,
    download: bool = True,
    dataset_class: Any = None,
) -> CLScenario:
    """Split CIFAR-100 (default 10 experiences of 10 classes) from torchvision.

    Images are upsampled to the backbone's input size (``image_size``, default from the
    backbone, else 224) and normalised with its processor's statistics. ``download`` needs
    network access. ``dataset_class`` replaces ``torchvision.datasets.CIFAR100`` (tests).
    """
    size, mean, std = image_preprocessing(backbone, image_size)
    return scenario_from_images(load_image_benchmark(
        "split_cifar100", root, image_size=size, mean=mean, std=std, num_experiences=num_experiences,
        class_order_seed=class_order_seed, download=download, dataset_class=dataset_class))


def imagenet_r_benchmark(
    root: str | os.PathLike,
    backbone: Any = None,
    num_experiences: int = 10,
    class_order_seed: int | None = None,
    *,
    image_size: int | None = None,
    test_fraction: float = 0.2,
) -> CLScenario:
    """ImageNet-R (200 classes; default 10 experiences of 20) from its extracted folder.

    ``root`` is the ``imagenet-r/`` folder of ``IMAGENET_R_URL`` (one sub-folder per
    class; any such tree works). As in L2P / CODA-Prompt, a seeded stratified
    ``test_fraction`` of every class is held out for testing.
    """
    size, mean, std = image_preprocessing(backbone, image_size)
    return scenario_from_images(load_image_benchmark(
        "imagenet_r", root, image_size=size, mean=mean, std=std, num_experiences=num_experiences,
        class_order_seed=class_order_seed, test_fraction=test_fraction))
