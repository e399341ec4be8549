"""Where the default run's time goes, phase by phase: ``cl-prompts run`` (``make run``).

One run of the runner (CLINC150 and the default method unless told otherwise), with each
phase timed apart:

- loading: the backbone and the dataset;
- tokenization: the stream's train and test texts, once;
- frozen query passes: the prompt-free passes that feed the routing (inside training and
  evaluation; cached, so each sentence costs one);
- training: the experiences' optimiser steps (the runner's train time less the two below);
- end of experience: what ``end_experience`` does (for ``growing_pool``: the samples once
  more through their task's final prompts and ``cross_task_passes`` earlier tasks' prompts,
  the ridge solves);
- evaluation: the accuracy matrix's rows, after every experience;
- calibration: the out-of-scope threshold, after the last experience;
- checkpoints: the checkpoints written (serialize, hash, fsync; ``checkpoints_written`` counts
  them: after every experience with ``--checkpoint-every 0``);
- ridge solves: every closed-form solve (part of end of experience);
- key search: every search of the key index (part of training and evaluation), whichever
  backend ran it (``key_search`` in the output names it): its share of the wall time bounds
  what the choice of backend can cost the run.

The phases overlap only where said (the frozen query passes and the key searches are part of
training and evaluation, the ridge solves part of end of experience). Writes ``--out`` (JSON):
the phases, the wall time, the run's final accuracy and peak memory, and the run's own
results folder beside it.

    .venv/bin/python benchmarks/bench_default_run.py                      # CLINC150, growing_pool
    .venv/bin/python benchmarks/bench_default_run.py --benchmark hwu64 --set prompt_length=32
    .venv/bin/python benchmarks/bench_default_run.py --eval-cache-mb 0    # without the evaluation cache
    .venv/bin/python benchmarks/bench_default_run.py --eval-split val --precision bf16
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from provenance import provenance, write_json
from suites import SUITES, suite_options

import cl_prompts.methods.closed_form as closed_form
import cl_prompts.methods.growing_pool.model as growing_pool_model
import cl_prompts.run.checkpoints as checkpoints
import cl_prompts.run.runner as runner
from cl_prompts.backbones import BackboneConfig, load_backbone
from cl_prompts.data import load_benchmark
from cl_prompts.index import KeyIndex
from cl_prompts.methods import get_method_class
from cl_prompts.run import RunConfig, run
from cl_prompts.run.config import DEFAULT_METHOD
from cl_prompts.run.loop import TokenizedStream

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def timed(owner: Any, name: str, seconds: dict[str, float], phase: str,
          calls: dict[str, int] | None = None) -> Iterator[None]:
    """While open, every call of ``owner.name`` adds its duration to ``seconds[phase]`` (and
    one to ``calls[phase]``)."""
    original = getattr(owner, name)
    own = name in vars(owner)  # else inherited: removing the wrapper restores it

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds[phase] = seconds.get(phase, 0.0) + time.perf_counter() - start
            if calls is not None:
                calls[phase] = calls.get(phase, 0) + 1

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        if own:
            setattr(owner, name, original)
        else:
            delattr(owner, name)


def parse_set(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs, each value read as JSON when it parses (``8``, ``true``, ``"x"``)."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set takes key=value, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def measure(config: RunConfig, load_backbone: Callable[[], Any], dataset=None) -> dict[str, Any]:
    """Run ``config`` with its phases timed; ``dataset`` None: loaded (and timed) from the config."""
    seconds: dict[str, float] = {}
    calls: dict[str, int] = {}
    wall = time.perf_counter()
    start = time.perf_counter()
    backbone = load_backbone()
    if dataset is None:
        dataset = load_benchmark(config)
    seconds["loading"] = time.perf_counter() - start
    method_class = get_method_class(config.method)
    with contextlib.ExitStack() as stack:
        stack.enter_context(timed(TokenizedStream, "__init__", seconds, "tokenization"))
        stack.enter_context(timed(backbone, "query_features", seconds, "frozen_query_passes"))
        stack.enter_context(timed(method_class, "end_experience", seconds, "end_of_experience"))
        stack.enter_context(timed(runner, "calibrate_on", seconds, "calibration"))
        stack.enter_context(timed(KeyIndex, "search", seconds, "key_search"))
        stack.enter_context(timed(closed_form, "solve_spd_all", seconds, "ridge_solves"))
        stack.enter_context(timed(checkpoints, "save_checkpoint", seconds, "checkpoints", calls))
        results = run(config, backbone=backbone, dataset=dataset)
    seconds["evaluation"] = results["eval_seconds"]
    # the runner's train time holds the optimiser steps and end_experience
    seconds["training"] = results["train_seconds"] - seconds.get("end_of_experience", 0.0)
    seconds["wall"] = time.perf_counter() - wall
    return {"seconds": {k: round(v, 3) for k, v in seconds.items()},
            "final_average_accuracy": results["final_average_accuracy"], "accuracy_matrix": results["accuracy_matrix"],
            "checkpoints_written": calls.get("checkpoints", 0),
            "peak_memory_mb": results["peak_memory_mb"], "method_config": results["method_config"],
            "query_cache": backbone.query_cache_info(), "key_search": results.get("key_search")}


def main(argv: list[str] | None = None, *, backbone=None, dataset=None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", default="clinc150", choices=SUITES)
    p.add_argument("--method", default=DEFAULT_METHOD)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="method options")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-split", default="test", choices=["test", "val"])
    p.add_argument("--precision", default=RunConfig.precision, help="the run's --precision (fp32, bf16, auto)")
    p.add_argument("--data-root", help="folder with clinc150/ and hwu64/")
    p.add_argument("--checkpoint-every", default="auto",
                   help="the run's --checkpoint-every (seconds, 0: after every experience, or auto)")
    p.add_argument("--eval-cache-mb", type=int, default=None,
                   help="growing_pool's evaluation feature cache, MB (0: off, to measure what it saves); "
                        "default: the library's")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/default_run.json"))
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    out = Path(args.out)
    config = RunConfig(**suite_options(args.benchmark, args.data_root), method=args.method,
                       seed=args.seed, eval_split=args.eval_split, precision=args.precision,
                       method_options=parse_set(args.set),
                       checkpoint_every=args.checkpoint_every if args.checkpoint_every == "auto"
                       else float(args.checkpoint_every),
                       out=str(out.with_suffix("")) + "-run", overwrite=True, progress=False, plots=False)

    def loaded_backbone():
        if backbone is not None:
            return backbone
        return load_backbone(BackboneConfig(name_or_path=config.backbone, max_length=config.max_length,
                                            precision=config.precision))

    cache_bytes = growing_pool_model.EVAL_FEATURE_BYTES if args.eval_cache_mb is None else args.eval_cache_mb << 20
    with mock.patch.object(growing_pool_model, "EVAL_FEATURE_BYTES", cache_bytes):
        row = measure(config, loaded_backbone, dataset)
    row["eval_cache_bytes"] = cache_bytes
    for phase, s in row["seconds"].items():
        print(f"{phase:22s} {s:8.1f} s")
    print(f"final average accuracy {row['final_average_accuracy']:.2f}, peak memory {row['peak_memory_mb']:.0f} MB, "
          f"{row['checkpoints_written']} checkpoints")
    result = {**provenance("bench_default_run", argv), "benchmark": args.benchmark, "method": config.method,
              "seed": args.seed, "eval_split": args.eval_split, "precision": args.precision, **row}
    write_json(out, result)
    return result


if __name__ == "__main__":
    main()
