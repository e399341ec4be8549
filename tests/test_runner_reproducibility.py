"""Same seed, same numbers on the real model: two `cl-prompts run` processes with different
thread counts give the same accuracy matrix and the same trained tensors, bit for bit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CL_PROMPTS_DATA", ROOT.parent / "shared" / "data"))


def _run(out: Path, threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop("MKL_CBWR", None)  # the CLI's own setting is what is tested
    cmd = [sys.executable, "-m", "cl_prompts.cli", "run", "--quick", "--method", "growing_pool",
           "--experiences", "3", "--eval-final-only", "--data-root", str(DATA), "--out", str(out),
           "--no-progress", "--no-plots"]
    subprocess.run(cmd, env=env, check=True, cwd=ROOT, timeout=1200)


@pytest.mark.skipif(not (DATA / "clinc150").is_dir(), reason="CLINC150 data not found")
def test_one_and_two_threads_give_the_same_bits(tmp_path):
    _run(tmp_path / "t1", 1)
    _run(tmp_path / "t2", 2)
    one, two = (json.loads((tmp_path / t / "results.json").read_text()) for t in ("t1", "t2"))
    assert one["accuracy_matrix"] == two["accuracy_matrix"]
    weights = [load_file(str(next((tmp_path / t / "checkpoint").glob("exp-*")) / "model" / "method.safetensors"))
               for t in ("t1", "t2")]
    assert weights[0].keys() == weights[1].keys()
    different = [k for k in weights[0] if not (weights[0][k] == weights[1][k]).all()]
    assert different == []
