"""Data-parallel runs: ``torchrun`` with gloo on CPU against one process with the same global batch."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cl_prompts.cli import main
from cl_prompts.data import synthetic_text_dataset, write_text_csv
from cl_prompts.results import read_results
from cl_prompts.run import checkpoints as ckpt
from cl_prompts.run.distributed import Workers, launched_world_size

TINY = {"growing_pool": ["projection_dim=64", "ridge=1.0", "prompted_ridge=1.0"], "ranpac": ["projection_dim=64"],
        "dualprompt": ["g_layers=[0]", "e_layers=[1]"], "coda_prompt": ["layers=[0,1]"]}
# statistics and key index, prompt usage counts, closed form; the rest are slow-marked
FAST = ("growing_pool", "l2p", "ranpac")
OTHERS = ("dualprompt", "coda_prompt", "prompt_tuning", "linear_probe", "finetune", "slda", "ncm")
SEQUENCE = Path(__file__).resolve().parent / "cli_sequence.py"  # several CLI runs in one process


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    ds = synthetic_text_dataset(num_classes=6, num_experiences=3, train_per_class=9, test_per_class=5)
    return write_text_csv(tmp_path_factory.mktemp("data") / "toy.csv", [ds.train, ds.test], ds.class_names)


@pytest.fixture(scope="module")
def two_process_launch(csv_path, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One torchrun launch of two processes (a launch costs seconds of process starts and
    imports): the FAST methods' runs into ``<root>/<method>``, then joint, which must be refused."""
    root = tmp_path_factory.mktemp("two")
    done = _torchrun_in_turn(2, [*(_args(csv_path, root / m, m) for m in FAST), _args(csv_path, root / "joint", "joint")])
    assert all((root / m / "results.json").is_file() for m in FAST), done.stderr[-3000:]
    return root, done


def _args(csv_path, out, method):
    sets = [a for s in TINY.get(method, []) for a in ("--set", s)]
    # batch 8 over 27 training rows: the last batch of 3 leaves a rank of 2 with one row
    return ["run", "--benchmark", f"file:{csv_path}", "--backbone", "tiny-bert", "--method", method,
            "--experiences", "3", "--epochs", "2", "--batch-size", "8", "--eval-batch-size", "4",
            "--out", str(out), "--no-progress", "--no-plots", *sets]


def _torchrun(nproc: int, args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "cl_prompts.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _torchrun_in_turn(nproc: int, commands: list[list[str]], timeout: float = 240) -> subprocess.CompletedProcess:
    """One launch whose processes run ``commands`` one after the other (tests/cli_sequence.py)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    joined = [a for i, c in enumerate(commands) for a in (["--then"] if i else []) + c]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           str(SEQUENCE), *joined]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _tensors(out) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt.latest_model_dir(out) / "method.safetensors"))


def test_workers_split_a_batch_into_disjoint_contiguous_slices():
    for n in (0, 1, 3, 8, 9):
        for world in (1, 2, 3):
            parts = [Workers(r, world).slice_of(n) for r in range(world)]
            rows = [i for p in parts for i in range(n)[p]]
            assert rows == list(range(n)), (n, world)
    assert [list(Workers(r, 3).mine(range(7))) for r in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]
    assert not Workers().active and Workers().is_main


def test_world_size_comes_from_the_launcher(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launched_world_size() == 1
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an int"):
        launched_world_size()


@pytest.mark.parametrize("method", [*FAST, *(pytest.param(m, marks=pytest.mark.slow) for m in OTHERS)])
def test_two_processes_match_one_with_the_same_global_batch(csv_path, tmp_path, method, request):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(_args(csv_path, one, method)) == 0
    if method in FAST:
        two = request.getfixturevalue("two_process_launch")[0] / method
    else:
        done = _torchrun(2, _args(csv_path, two, method))
        assert done.returncode == 0, done.stderr[-3000:]
    r1, r2 = read_results(one), read_results(two)
    assert r2["world_sizes"] == [2] and r1["world_sizes"] == [1]
    for row1, row2 in zip(r1["accuracy_matrix"], r2["accuracy_matrix"], strict=True):
        assert row1 == pytest.approx(row2, abs=1e-9)  # every test sample predicted alike
    t1, t2 = _tensors(one), _tensors(two)
    assert t1.keys() == t2.keys()
    for name in t1:
        # gradients and statistics are sums over the ranks' shares: equal up to float rounding
        assert torch.allclose(t1[name].double(), t2[name].double(), rtol=1e-4, atol=1e-5), name
    if method == "ranpac":  # no gradient: only the order of the float64 sums differs
        for name in (n for n in t1 if t1[n].dtype == torch.float64):
            assert torch.allclose(t1[name], t2[name], rtol=1e-10, atol=1e-10), name


@pytest.mark.slow  # 20 s; the default suite's torchrun tests cover the same runner path
def test_accelerate_launch_runs_data_parallel(csv_path, tmp_path):
    pytest.importorskip("accelerate")
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(_args(csv_path, one, "ranpac")) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # --multi_gpu is accelerate's torch.distributed launcher; without GPUs the runner takes gloo
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "cl_prompts.cli", *_args(csv_path, two, "ranpac")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("results:") == 1  # rank 0 alone reports
    r1, r2 = read_results(one), read_results(two)
    assert r2["world_sizes"] == [2]
    for row1, row2 in zip(r1["accuracy_matrix"], r2["accuracy_matrix"], strict=True):
        assert row1 == pytest.approx(row2, abs=1e-9)


def test_a_folder_rank_0_refuses_stops_every_rank(csv_path, tmp_path):
    out = tmp_path / "run"
    assert main(_args(csv_path, out, "ranpac")) == 0
    done = _torchrun(2, _args(csv_path, out, "ranpac"), timeout=120)  # results there, no --overwrite
    assert done.returncode != 0
    assert "rank 0 could not prepare the run folder" in done.stderr
    assert read_results(out)["world_sizes"] == [1]  # the saved results are untouched


def test_joint_is_refused_on_several_processes(two_process_launch):
    root, done = two_process_launch
    assert done.returncode != 0 and not (root / "joint" / "results.json").exists()
    assert "joint cannot run data-parallel (2 processes)" in done.stderr


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_killed_rank_ends_the_run_and_it_resumes_on_another_world_size(csv_path, tmp_path):
    """SIGKILL one of two ranks after the first checkpoint: torchrun stops the other, the
    checkpoint is intact, and ``--resume`` on one process finishes the run."""
    single = tmp_path / "single"
    assert main([*_args(csv_path, single, "growing_pool"), "--epochs", "12"]) == 0
    cut = tmp_path / "cut"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m",
           "cl_prompts.cli", *_args(csv_path, cut, "growing_pool"), "--epochs", "12"]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not ckpt.has_checkpoint(cut) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    ranks = _children(proc.pid)
    assert proc.poll() is None and len(ranks) == 2, "the run ended before a rank could be killed"
    os.kill(max(ranks), signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode != 0 and "Signal 9 (SIGKILL)" in err  # torchrun names the killed rank
    assert not _children(proc.pid) and not (cut / "results.json").exists()
    assert ckpt.has_checkpoint(cut)

    assert main(["run", "--resume", str(cut), "--no-progress", "--no-plots"]) == 0
    resumed = read_results(cut)
    assert resumed["world_sizes"] == [2, 1] and resumed["resumed_at"][0] >= 1
    for row1, row2 in zip(read_results(single)["accuracy_matrix"], resumed["accuracy_matrix"], strict=True):
        assert row1 == pytest.approx(row2, abs=1e-9)
