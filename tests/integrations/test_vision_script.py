"""benchmarks/vision.py end to end on a tiny image folder with a random tiny ViT (offline)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cl_prompts.results import read_results

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "vision.py"
L2P_SMALL = ["--set", "pool_size=4", "--set", "top_k=2", "--set", "prompt_length=2"]


@pytest.fixture(scope="module")
def vision_script():
    spec = importlib.util.spec_from_file_location("vision_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    return ["--benchmark", f"folder:{folder}", "--method", method, "--backbone", "tiny-vit",
            "--experiences", "2", "--batch-size", "4", "--eval-batch-size", "3",
            "--out", str(out), "--no-progress", *more]


def _check_run(out: Path, method: str, samples: int = 16) -> dict:
    r = read_results(out)  # checks the keys of the runner's format
    assert r["method"] == method and r["benchmark"] == "tiny-r" and r["backbone"] == "tiny-vit"
    assert r["num_experiences"] == 2 and r["num_classes"] == 4
    assert r["experiences"] == [[0, 1], [2, 3]]
    m = r["accuracy_matrix"]
    assert len(m) == 2 and all(len(row) == 2 for row in m)
    assert m[0][1] is None  # not trained yet
    seen = [m[0][0], m[1][0], m[1][1]]
    assert all(isinstance(v, float) and 0.0 <= v <= 100.0 for v in seen)
    assert math.isclose(r["final_average_accuracy"], (m[1][0] + m[1][1]) / 2)
    assert r["train_samples"] == samples and r["train_seconds"] > 0
    assert (out / "summary.md").read_text().startswith(f"## {method} on tiny-r")
    for png in ("accuracy_matrix.png", "accuracy_over_time.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return r


def test_ncm_on_a_folder_then_refuses_the_same_out_dir(vision_script, folder, tmp_path):
    out = tmp_path / "ncm"
    results = vision_script.main(_argv(folder, out, "ncm"))
    r = _check_run(out, "ncm")
    assert r["accuracy_matrix"] == results["accuracy_matrix"]
    assert r["config"]["method_options"] == {} and r["config"]["out"] == str(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(FileExistsError, match="--overwrite") as refused:
        vision_script.main(_argv(folder, out, "ncm"))
    assert "--resume" not in str(refused.value)  # the script has no --resume to offer
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # first results untouched
    with pytest.raises((ValueError, TypeError), match="no_such_option"):  # bad --set: old results stay
        vision_script.main(_argv(folder, out, "ncm", "--overwrite", "--set", "no_such_option=1"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    vision_script.main(_argv(folder, out, "ncm", "--overwrite", "--no-plots"))
    assert not (out / "accuracy_matrix.png").exists()  # the old plots were ours: removed
    assert read_results(out)["accuracy_matrix"] == r["accuracy_matrix"]  # ncm is deterministic


def test_l2p_with_a_small_pool_is_seeded(vision_script, folder, tmp_path, vision_backbone):
    argv = _argv(folder, tmp_path / "a", "l2p", "--epochs", "2", *L2P_SMALL)
    first = vision_script.main(argv, backbone=vision_backbone)  # injected: same tiny ViT
    r = _check_run(tmp_path / "a", "l2p", samples=32)  # 16 train images, 2 epochs
    assert r["config"]["method_options"] == {"pool_size": 4, "top_k": 2, "prompt_length": 2}
    assert "task_id_accuracy_matrix" not in r  # l2p picks prompts from a shared pool, not tasks
    argv_b = _argv(folder, tmp_path / "b", "l2p", "--epochs", "2", *L2P_SMALL)
    second = vision_script.main(argv_b, backbone=vision_backbone)
    assert second["accuracy_matrix"] == first["accuracy_matrix"]  # same seed, same numbers


def test_task_identification_columns(vision_script, folder, tmp_path, vision_backbone):
    small = ["--set", "projection_dim=64"]  # its default random-feature width is for real backbones
    r = vision_script.main(_argv(folder, tmp_path / "gp", "growing_pool", *small), backbone=vision_backbone)
    tid = r["task_id_accuracy_matrix"]  # growing_pool picks a task per input
    assert tid[0][1] is None and all(0.0 <= v <= 100.0 for v in (tid[0][0], tid[1][0], tid[1][1]))
    assert r["final_task_id_accuracy"] == (tid[1][0] + tid[1][1]) / 2
    assert "task-identification accuracy (final)" in (tmp_path / "gp" / "summary.md").read_text()


def test_bad_benchmark_names(vision_script, tmp_path):
    with pytest.raises(ValueError, match="benchmark must be one of"):
        vision_script.main(["--benchmark", "cifar10", "--out", str(tmp_path / "x")])
    with pytest.raises(ValueError, match="benchmark must be one of"):
        vision_script.main(["--benchmark", "folder:", "--out", str(tmp_path / "x")])
    with pytest.raises(ValueError, match="imagenet_r needs --root"):
        vision_script.main(["--benchmark", "imagenet_r", "--backbone", "tiny-vit", "--out", str(tmp_path / "y")])
