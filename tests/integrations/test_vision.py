import numpy as np
import pytest
import torch
from PIL import Image

from cl_prompts.integrations.avalanche import (
    imagenet_r_benchmark,
    split_cifar100_benchmark,
    vit_transforms,
)


def _image_folder(root, classes=4, per_class=5, size=20):
    rng = np.random.default_rng(0)
    for c in range(classes):
        d = root / f"n0000{c}"
        d.mkdir(parents=True)
        for k in range(per_class):
            arr = rng.integers(0, 255, size=(size, size + 3, 3), dtype=np.uint8)
            Image.fromarray(arr).save(d / f"img{k}.png")
    return root


def test_imagenet_r_code_path_on_tiny_folder(tmp_path, vision_backbone):
    root = _image_folder(tmp_path / "imagenet-r")
    bm = imagenet_r_benchmark(root, vision_backbone, num_experiences=2)
    assert bm.class_names == ["n00000", "n00001", "n00002", "n00003"]
    assert [len(e.dataset) for e in bm.train_stream] == [8, 8]
    assert [len(e.dataset) for e in bm.test_stream] == [2, 2]
    x, y, t = bm.test_stream[1].dataset[0]
    assert x.shape == (3, 32, 32) and y in (2, 3) and t == 0
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0  # normalised with mean = std = 0.5
    # the eval view is deterministic; the model consumes it
    x2, _, _ = bm.test_stream[1].dataset[0]
    assert torch.equal(x, x2)
    out = vision_backbone(x.unsqueeze(0))
    assert out.pooled.shape == (1, 32)


def test_imagenet_r_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="imagenet-r.tar"):
        imagenet_r_benchmark(tmp_path / "missing")
    root = _image_folder(tmp_path / "one", classes=2, per_class=1)
    with pytest.raises(ValueError, match="at least 2 images"):
        imagenet_r_benchmark(root, image_size=32, num_experiences=1)
    with pytest.raises(ValueError, match="test_fraction"):
        imagenet_r_benchmark(root, test_fraction=0.0)


class FakeCIFAR100(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR100's interface over 3 random images per class."""

    def __init__(self, root, train=True, download=False, transform=None):
        self.classes = [f"c{i}" for i in range(100)]
        self.targets = [c for c in range(100) for _ in range(3 if train else 1)]
        self.transform = transform
        self.seen = (root, train, download)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        img = Image.fromarray(np.full((32, 32, 3), i % 255, dtype=np.uint8))
        return self.transform(img), self.targets[i]


def test_split_cifar100_code_path(tmp_path):
    bm = split_cifar100_benchmark(tmp_path, image_size=24, download=False, dataset_class=FakeCIFAR100)
    assert len(bm.train_stream) == 10 and bm.experiences_classes[3] == list(range(30, 40))
    assert len(bm.train_stream[0].dataset) == 30 and len(bm.test_stream[0].dataset) == 10
    x, y, _ = bm.train_stream[9].dataset[0]
    assert x.shape == (3, 24, 24) and 90 <= y < 100


def test_vit_transforms_and_bad_backbone(text_backbone):
    t = vit_transforms(16, train=False)
    assert t(Image.new("L", (40, 20))).shape == (3, 16, 16)
    with pytest.raises(ValueError, match="image_size"):
        vit_transforms(0)
    with pytest.raises(TypeError, match="vision backbone"):
        split_cifar100_benchmark(backbone=text_backbone, dataset_class=FakeCIFAR100, download=False)


def test_image_statistics_come_from_the_backbones_image_processor(tmp_path):
    import json
    from types import SimpleNamespace

    from cl_prompts.integrations.vision import VIT_MEAN, VIT_STD, image_statistics  # re-exported

    imagenet = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "ViTImageProcessor", "image_mean": imagenet[0], "image_std": imagenet[1]}))
    local = SimpleNamespace(config=SimpleNamespace(name_or_path=str(tmp_path), local_files_only=True))
    assert image_statistics(local) == (tuple(imagenet[0]), tuple(imagenet[1]))
    tiny = SimpleNamespace(config=SimpleNamespace(name_or_path="tiny-vit", local_files_only=True))
    assert image_statistics(tiny) == (VIT_MEAN, VIT_STD)
    empty = SimpleNamespace(config=SimpleNamespace(name_or_path=str(tmp_path / "none"), local_files_only=True))
    assert image_statistics(empty) == (VIT_MEAN, VIT_STD)
