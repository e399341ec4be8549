"""Class-incremental image data for the runner: Split CIFAR-100, ImageNet-R, any class-folder tree.

An :class:`ImageDataset` holds two torch datasets over the same images (training with
augmentation, test without) and every sample's class id, so the runner (and
``cl_prompts.integrations.vision`` for Avalanche) can cut experiences out of them.
torchvision is imported on first use (the ``[vision]`` extra).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Subset

from cl_prompts.checks import is_int
from cl_prompts.choices import IMAGE_BENCHMARKS
from cl_prompts.data.types import ExperienceNames, class_order, split_classes, validate_experiences
from cl_prompts.extras import require

IMAGENET_R_URL = "https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar"
VIT_MEAN = (0.5, 0.5, 0.5)  # google/vit-base-patch16-224 (and -in21k) normalisation
VIT_STD = (0.5, 0.5, 0.5)


@dataclass
class ImageDataset(ExperienceNames):
    """Images of a class-incremental benchmark.

    Attributes:
        train / test: torch datasets returning ``(image (3, H, W), class id)``; train
            images are augmented (random resized crop and flip), test images are not.
        train_labels / test_labels: every sample's class id, in dataset order.
        class_names: C names; experiences: disjoint class-id lists covering ``0..C-1``.
        calibration: always None (out-of-scope calibration is for text).
    """

    train: Any
    test: Any
    train_labels: list[int]
    test_labels: list[int]
    class_names: list[str]
    experiences: list[list[int]]
    name: str = "images"
    info: dict = field(default_factory=dict)
    calibration: None = None

    def __post_init__(self) -> None:
        if len(self.train) != len(self.train_labels) or len(self.test) != len(self.test_labels):
            raise ValueError("train_labels / test_labels must give one class id per image")
        self.experiences = validate_experiences(self.experiences, len(self.class_names))

    def fingerprint(self) -> str:
        """sha256 of the name, class names, labels and experiences (a resume checks it)."""
        h = hashlib.sha256()
        for part in (self.name, self.class_names, self.train_labels, self.test_labels, self.experiences):
            h.update(json.dumps(part).encode("utf-8") + b"\0")
        return h.hexdigest()

    def regroup(self, num_experiences: int | None = None, class_order_seed: int | None = None,
                order: list[int] | None = None) -> ImageDataset:
        """Another class order (seeded, or explicit) and/or number of experiences."""
        if order is None:
            order = [c for e in self.experiences for c in e] if class_order_seed is None else \
                class_order(self.num_classes, class_order_seed)
        groups = split_classes(order, num_experiences or self.num_experiences)
        return ImageDataset(self.train, self.test, self.train_labels, self.test_labels, self.class_names,
                            groups, self.name, dict(self.info))

    def subset(self, per_class: int, seed: int = 0, test_per_class: int | None = None) -> ImageDataset:
        """At most ``per_class`` training (and ``test_per_class`` test) images per class."""
        train_idx = _per_class(self.train_labels, per_class, seed)
        test_idx = list(range(len(self.test_labels))) if test_per_class is None else \
            _per_class(self.test_labels, test_per_class, seed)
        return ImageDataset(
            Subset(self.train, train_idx), Subset(self.test, test_idx),
            [self.train_labels[i] for i in train_idx], [self.test_labels[i] for i in test_idx],
            self.class_names, self.experiences, self.name, dict(self.info),
        )


def _per_class(labels: list[int], per_class: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    y = np.asarray(labels)
    keep: list[int] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        keep.extend(int(i) for i in rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return sorted(keep)


def vit_transforms(image_size: int = 224, train: bool = True, mean=VIT_MEAN, std=VIT_STD):
    """Train: random resized crop + flip; eval: resize (256/224) + centre crop; then normalise.

    Output tensors are (3, image_size, image_size), ready for the model.
    """
    T = require("torchvision", "image transforms").transforms  # noqa: N806
    if not is_int(image_size) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8, got {image_size!r}")
    tail = [T.ToTensor(), T.Normalize(mean, std)]
    if train:
        return T.Compose([T.Lambda(_rgb), T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), *tail])
    return T.Compose([T.Lambda(_rgb), T.Resize(int(round(image_size * 256 / 224))), T.CenterCrop(image_size), *tail])


def _rgb(img: Any) -> Any:
    return img.convert("RGB") if hasattr(img, "convert") else img


def load_image_benchmark(
    spec: str,
    root: str | os.PathLike | None = None,
    *,
    image_size: int = 224,
    mean: tuple[float, ...] = VIT_MEAN,
    std: tuple[float, ...] = VIT_STD,
    num_experiences: int = 10,
    class_order_seed: int | None = None,
    test_fraction: float = 0.2,
    download: bool = False,
    dataset_class: Any = None,
) -> ImageDataset:
    """``split_cifar100`` (torchvision's CIFAR-100 under ``root``), ``imagenet_r`` (the
    extracted ``imagenet-r/`` folder of ``IMAGENET_R_URL`` under ``root``) or
    ``folder:PATH`` (one sub-folder of images per class; a seeded stratified
    ``test_fraction`` of each class is the test split, as in L2P / CODA-Prompt).

    dataset_class replaces ``torchvision.datasets.CIFAR100`` (tests).
    """
    train_tf, test_tf = vit_transforms(image_size, True, mean, std), vit_transforms(image_size, False, mean, std)
    if spec == "split_cifar100":
        cls = dataset_class or require("torchvision", "Split CIFAR-100").datasets.CIFAR100
        folder = Path(root) if root is not None else Path.home() / ".cache" / "cl_prompts" / "cifar100"
        try:
            train = cls(str(folder), train=True, download=download, transform=train_tf)
            test = cls(str(folder), train=False, download=download, transform=test_tf)
        except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
            raise FileNotFoundError(f"CIFAR-100 not found under {folder}: pass --data-root, or download it "
                                    f"(torchvision.datasets.CIFAR100(root, download=True))") from exc
        names = list(getattr(train, "classes", [])) or [str(c) for c in range(int(max(train.targets)) + 1)]
        ds = ImageDataset(train, test, list(map(int, train.targets)), list(map(int, test.targets)), names,
                          split_classes(list(range(len(names))), len(names)), name="split_cifar100")
    else:
        if spec == "imagenet_r":
            folder = Path(root) if root is not None else Path("imagenet-r")
            folder = folder / "imagenet-r" if (folder / "imagenet-r").is_dir() else folder
        elif spec.startswith("folder:") and len(spec) > len("folder:"):
            folder = Path(spec[len("folder:"):])
        else:
            raise ValueError(f"benchmark must be one of {list(IMAGE_BENCHMARKS)} or folder:PATH, got {spec!r}")
        ds = _folder_dataset(folder, train_tf, test_tf, test_fraction,
                             "imagenet_r" if spec == "imagenet_r" else folder.name or "folder")
    order = None if class_order_seed is None else class_order(ds.num_classes, class_order_seed)
    return ds.regroup(num_experiences, order=order)


def _folder_dataset(path: Path, train_tf: Any, test_tf: Any, test_fraction: float, name: str) -> ImageDataset:
    image_folder = require("torchvision", "an image-folder benchmark").datasets.ImageFolder
    if not path.is_dir():
        hint = f"; download and extract {IMAGENET_R_URL}" if name == "imagenet_r" else ""
        raise FileNotFoundError(f"image folder not found: {path}{hint}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    train_view = image_folder(str(path), transform=train_tf)
    test_view = image_folder(str(path), transform=test_tf)
    targets = np.asarray(train_view.targets)
    rng = np.random.default_rng(0)
    test_idx: list[int] = []
    for c, class_name in enumerate(train_view.classes):
        idx = np.flatnonzero(targets == c)
        if len(idx) < 2:
            raise ValueError(f"{path}: class {class_name!r} needs at least 2 images, has {len(idx)}")
        n_test = min(len(idx) - 1, max(1, round(test_fraction * len(idx))))
        test_idx.extend(int(i) for i in rng.choice(idx, size=n_test, replace=False))
    test_idx.sort()
    held = set(test_idx)
    train_idx = [i for i in range(len(targets)) if i not in held]
    names = list(train_view.classes)
    return ImageDataset(Subset(train_view, train_idx), Subset(test_view, test_idx),
                        targets[train_idx].tolist(), targets[test_idx].tolist(), names,
                        split_classes(list(range(len(names))), len(names)), name=name, info={"root": str(path)})
