"""``cl-prompts run`` on image benchmarks: a tiny class-folder tree and a random tiny ViT (offline)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cl_prompts.backbones.testing import tiny_vision_backbone
from cl_prompts.cli import main
from cl_prompts.data.images import load_image_benchmark
from cl_prompts.results import read_results
from cl_prompts.run import RunConfig, run

L2P_SMALL = ["--set", "pool_size=4", "--set", "top_k=2", "--set", "prompt_length=2"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """4 classes x 5 images: per class 4 train, 1 test; each class has its own mean colour."""
    root = tmp_path_factory.mktemp("data") / "tiny-r"
    rng = np.random.default_rng(0)
    for c in range(4):
        d = root / f"class{c}"
        d.mkdir(parents=True)
        for k in range(5):
            base = np.array([60 * c, 255 - 60 * c, 40 + 50 * (c % 2)])
            arr = np.clip(base + rng.integers(-20, 20, size=(20, 23, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(d / f"img{k}.png")
    return root


def _argv(folder: Path, out: Path, method: str, *more: str) -> list[str]:
    return ["run", "--benchmark", f"folder:{folder}", "--method", method, "--backbone", "tiny-vit",
            "--experiences", "2", "--batch-size", "4", "--eval-batch-size", "3",
            "--out", str(out), "--no-progress", *more]


def _check_run(out: Path, method: str, samples: int = 16) -> dict:
    r = read_results(out)
    assert r["method"] == method and r["benchmark"] == "tiny-r" and r["backbone"] == "tiny-vit"
    assert r["num_experiences"] == 2 and r["num_classes"] == 4
    assert r["experiences"] == [[0, 1], [2, 3]] and r["experience_names"] == ["class0 +1", "class2 +1"]
    m = r["accuracy_matrix"]
    assert len(m) == 2 and m[0][1] is None
    assert all(isinstance(v, float) and 0.0 <= v <= 100.0 for v in (m[0][0], m[1][0], m[1][1]))
    assert math.isclose(r["final_average_accuracy"], (m[1][0] + m[1][1]) / 2)
    assert r["train_samples"] == samples and r["calibration"] is None
    assert (out / "summary.md").read_text().startswith(f"## {method} on tiny-r")
    return r


def test_ncm_on_a_folder_then_refuses_the_same_out_dir(folder, tmp_path, capsys):
    out = tmp_path / "ncm"
    assert main(_argv(folder, out, "ncm")) == 0
    r = _check_run(out, "ncm")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(_argv(folder, out, "ncm")) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert main(_argv(folder, out, "ncm", "--overwrite", "--no-plots")) == 0
    assert read_results(out)["accuracy_matrix"] == r["accuracy_matrix"]  # ncm is deterministic


def test_l2p_is_seeded_and_a_resumed_run_repeats_an_uninterrupted_one(folder, tmp_path):
    assert main(_argv(folder, tmp_path / "a", "l2p", "--epochs", "2", *L2P_SMALL)) == 0
    first = _check_run(tmp_path / "a", "l2p", samples=32)  # 16 training images, 2 epochs

    class Stop(RuntimeError):
        pass

    def stop_after_first(e, state):
        if e == 0:
            raise Stop

    config = RunConfig(benchmark=f"folder:{folder}", method="l2p", backbone="tiny-vit", experiences=2,
                       batch_size=4, eval_batch_size=3, epochs=2, out=str(tmp_path / "b"), progress=False,
                       method_options={"pool_size": 4, "top_k": 2, "prompt_length": 2})
    with pytest.raises(Stop):  # the random crops and flips of experience 1 come after the checkpoint
        run(config, on_experience_end=stop_after_first)
    assert main(["run", "--resume", str(tmp_path / "b"), "--no-progress"]) == 0
    assert read_results(tmp_path / "b")["accuracy_matrix"] == first["accuracy_matrix"]


def test_growing_pool_reports_task_identification(folder, tmp_path):
    assert main(_argv(folder, tmp_path / "gp", "growing_pool", "--set", "projection_dim=64")) == 0
    r = read_results(tmp_path / "gp")
    tid = r["task_id_accuracy_matrix"]
    assert tid[0][1] is None and all(0.0 <= v <= 100.0 for v in (tid[0][0], tid[1][0], tid[1][1]))


def test_split_cifar100_and_sorted_class_order(tmp_path):
    class FakeCIFAR100(torch.utils.data.Dataset):
        def __init__(self, root, train=True, download=False, transform=None):
            self.classes = [f"c{i:02d}" for i in range(100)][::-1]  # names sort the other way round
            self.targets = [c for c in range(100) for _ in range(2 if train else 1)]
            self.transform = transform

        def __len__(self):
            return len(self.targets)

        def __getitem__(self, i):
            return self.transform(Image.fromarray(np.full((32, 32, 3), i % 255, dtype=np.uint8))), self.targets[i]

    ds = load_image_benchmark("split_cifar100", tmp_path, image_size=32, num_experiences=10,
                              dataset_class=FakeCIFAR100)
    assert ds.experiences[3] == list(range(30, 40)) and ds.train[0][0].shape == (3, 32, 32)
    config = RunConfig(benchmark="split_cifar100", method="ncm", backbone="tiny-vit", out=str(tmp_path / "r"),
                       progress=False, plots=False, quick=True)
    r = run(config, backbone=tiny_vision_backbone(), dataset=ds)
    assert r["benchmark"] == "split_cifar100" and len(r["accuracy_matrix"]) == 10
    assert r["train_samples"] == 200  # --quick keeps at most 10 per class: all 2 here


def test_image_benchmarks_refuse_what_does_not_apply(folder, tmp_path, capsys):
    assert RunConfig(benchmark=f"folder:{folder}").backbone == "google/vit-base-patch16-224"
    with pytest.raises(ValueError, match="eval_split 'val' is for text"):
        RunConfig(benchmark="split_cifar100", eval_split="val")
    with pytest.raises(ValueError, match="needs a path"):
        RunConfig(benchmark="folder:")
    assert main(["run", "--benchmark", f"folder:{folder}", "--backbone", "tiny-bert", "--method", "ncm",
                 "--out", str(tmp_path / "t")]) == 2
    assert "needs a vision backbone" in capsys.readouterr().err
    assert main(["run", "--benchmark", f"folder:{tmp_path / 'missing'}", "--backbone", "tiny-vit",
                 "--out", str(tmp_path / "m")]) == 2
    assert "image folder not found" in capsys.readouterr().err
    assert not (tmp_path / "t").exists() and not (tmp_path / "m").exists()
