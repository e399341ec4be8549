"""Vision benchmarks (Split CIFAR-100, ImageNet-R) with the standard ViT preprocessing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from torch.utils.data import Subset

from cl_prompts.data import class_order, split_classes
from cl_prompts.extras import require
from cl_prompts.integrations.benchmarks import benchmark_from_class_groups

IMAGENET_R_URL = "https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar"
VIT_MEAN = (0.5, 0.5, 0.5)  # google/vit-base-patch16-224 (and -in21k) normalisation
VIT_STD = (0.5, 0.5, 0.5)


def image_statistics(backbone: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the backbone was trained with: its ``AutoImageProcessor``'s ``image_mean`` /
    ``image_std`` (DeiT and most ViTs: ImageNet's), else ViT's 0.5 (a backbone without a
    processor on disk, e.g. the tiny test models)."""
    name = getattr(getattr(backbone, "config", None), "name_or_path", None)
    if backbone is None or name is None or name.startswith("tiny-"):
        return VIT_MEAN, VIT_STD
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(name, local_files_only=backbone.config.local_files_only)
    except (OSError, ValueError):
        return VIT_MEAN, VIT_STD
    mean, std = getattr(processor, "image_mean", None), getattr(processor, "image_std", None)
    if mean is None or std is None:
        return VIT_MEAN, VIT_STD
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def vit_transforms(image_size: int = 224, train: bool = True, mean=VIT_MEAN, std=VIT_STD):
    """Train: random resized crop + flip; eval: resize (256/224) + centre crop; then normalise.

    Output tensors are (3, image_size, image_size), ready for the model.
    """
    T = require("torchvision", "image transforms").transforms

    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8, got {image_size!r}")
    tail = [T.ToTensor(), T.Normalize(mean, std)]
    if train:
        return T.Compose([T.Lambda(_rgb), T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), *tail])
    return T.Compose([T.Lambda(_rgb), T.Resize(int(round(image_size * 256 / 224))), T.CenterCrop(image_size), *tail])


def _rgb(img: Any) -> Any:
    return img.convert("RGB") if hasattr(img, "convert") else img


def _image_size(backbone: Any, image_size: int | None) -> int:
    if image_size is not None:
        return image_size
    if backbone is not None:
        if getattr(backbone, "modality", None) != "vision":
            raise TypeError(f"backbone must be a vision backbone, got modality {getattr(backbone, 'modality', None)!r}")
        return int(backbone.model.config.image_size)
    return 224


def _groups(num_classes: int, num_experiences: int, class_order_seed: int | None) -> list[list[int]]:
    order = list(range(num_classes)) if class_order_seed is None else class_order(num_classes, class_order_seed)
    return split_classes(order, num_experiences)


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
    backbone, else 224). ``download`` needs network access. ``dataset_class`` replaces
    ``torchvision.datasets.CIFAR100`` (same signature; for tests).
    """
    if dataset_class is None:
        dataset_class = require("torchvision", "Split CIFAR-100").datasets.CIFAR100
    size = _image_size(backbone, image_size)
    mean, std = image_statistics(backbone)
    root = Path(root) if root is not None else Path.home() / ".cache" / "cl_prompts" / "cifar100"
    train = dataset_class(str(root), train=True, download=download, transform=vit_transforms(size, True, mean, std))
    test = dataset_class(str(root), train=False, download=download, transform=vit_transforms(size, False, mean, std))
    names = list(getattr(train, "classes", [])) or None
    n = len(names) if names else int(max(train.targets)) + 1
    return benchmark_from_class_groups(
        train, list(train.targets), test, list(test.targets), _groups(n, num_experiences, class_order_seed),
        class_names=names, name="split_cifar100",
    )


def imagenet_r_benchmark(
    root: str | os.PathLike,
    backbone: Any = None,
    num_experiences: int = 10,
    class_order_seed: int | None = None,
    *,
    image_size: int | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> CLScenario:
    """ImageNet-R (200 classes; default 10 experiences of 20) from an extracted folder.

    ``root`` is the ``imagenet-r/`` folder of ``{IMAGENET_R_URL}`` (one sub-folder per
    class). As in L2P / CODA-Prompt, a seeded stratified ``test_fraction`` of every
    class is held out for testing.
    """
    ImageFolder = require("torchvision", "an image-folder benchmark").datasets.ImageFolder  # noqa: N806

    path = Path(root)
    if not path.is_dir():
        raise FileNotFoundError(
            f"root: ImageNet-R folder not found at {path}; download and extract {IMAGENET_R_URL}"
        )
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    size = _image_size(backbone, image_size)
    mean, std = image_statistics(backbone)
    train_view = ImageFolder(str(path), transform=vit_transforms(size, True, mean, std))
    test_view = ImageFolder(str(path), transform=vit_transforms(size, False, mean, std))
    targets = np.asarray(train_view.targets)
    rng = np.random.default_rng(split_seed)
    test_idx: list[int] = []
    for c in range(len(train_view.classes)):
        idx = np.flatnonzero(targets == c)
        if len(idx) < 2:
            raise ValueError(f"root: class {train_view.classes[c]!r} needs at least 2 images, has {len(idx)}")
        n_test = min(len(idx) - 1, max(1, round(test_fraction * len(idx))))
        test_idx.extend(int(i) for i in rng.choice(idx, size=n_test, replace=False))
    test_idx.sort()
    held = set(test_idx)
    train_idx = [i for i in range(len(targets)) if i not in held]
    return benchmark_from_class_groups(
        Subset(train_view, train_idx), targets[train_idx].tolist(),
        Subset(test_view, test_idx), targets[test_idx].tolist(),
        _groups(len(train_view.classes), num_experiences, class_order_seed),
        class_names=train_view.classes, name="imagenet_r",
    )
