"""The examples of docs/avalanche.md run: on a tiny backbone here, as written (real MiniLM and
CLINC150) in the slow test, which also reports how long each takes."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "avalanche.md"
WAYS = ("strategy", "plugin", "combined")
# stands in for the "setup" block: the same names, a tiny random backbone, a toy stream, and
# build_model giving each method its tiny-backbone sizes (TINY, set by the test)
TINY_SETUP = """
from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.data import synthetic_text_dataset
from cl_prompts.integrations.avalanche import text_benchmark
from cl_prompts.methods import build_model as build_full_size

def build_model(name, backbone, num_classes, **options):
    return build_full_size(name, backbone, num_classes, **{**TINY.get(name, {}), **options})

backbone = tiny_text_backbone(max_length=16)
bm = text_benchmark(synthetic_text_dataset(num_classes=6, num_experiences=3), backbone)
stream = bm.train_stream[:3]
"""


def examples() -> dict[str, str]:
    """``<!-- example: NAME -->`` followed by a python block -> {NAME: code}."""
    found = re.findall(r"<!-- example: (\w+) -->\n```python\n(.*?)```", DOC.read_text(), flags=re.S)
    return dict(found)


def run_examples(setup: str, namespace: dict | None = None) -> dict[str, float]:
    """Execute the setup then each way in one namespace, as a reader pasting them would; seconds each."""
    code = examples()
    assert set(code) == {"setup", *WAYS}
    namespace = dict(namespace or {})
    seconds = {}
    for name, source in (("setup", setup), *((w, code[w]) for w in WAYS)):
        start = time.perf_counter()
        exec(compile(source, f"{DOC.name}:{name}", "exec"), namespace)
        seconds[name] = time.perf_counter() - start
        if name == "setup":
            continue
        method, metrics = namespace["method"], namespace["metrics"]
        assert method.current_experience == 2 and not method.is_open, name
        values = [v for v in metrics.values() if isinstance(v, (int, float))]
        assert values and all(math.isfinite(v) for v in values), (name, metrics)
    return seconds


def test_docs_examples_run(tiny_settings):
    run_examples(TINY_SETUP, {"TINY": tiny_settings})


@pytest.mark.slow
def test_docs_examples_run_as_written():
    seconds = run_examples(examples()["setup"])  # one torch thread: the suite's setting
    print("docs/avalanche.md examples, seconds:", {k: round(v, 1) for k, v in seconds.items()})
