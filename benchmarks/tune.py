"""Choose each method's settings on validation data only: a small grid per method.

    python benchmarks/tune.py --methods ranpac slda ncm --out benchmarks/results/tune
    python benchmarks/tune.py --methods growing_pool --out benchmarks/results/tune-growing_pool-fusion

Every trial is a run of the runner with ``eval_split="val"``: CLINC150's own val
split, or a stratified held-out 10% of a file benchmark's train rows (never trained on);
the test data are never read. Options that only change predictions
(``PREDICTION_ONLY``) are evaluated on the final model of one run. One setting per method is chosen for all the benchmarks
and seeds given: the one with the best mean final validation accuracy over every (benchmark, seed)
pair (ties: the earlier trial). One seed cannot separate settings a few tenths apart (the seed
alone moves HWU64's validation accuracy by up to 0.8), so ``--seeds 0 1 2`` ranks by a mean of three.
``<out>/tune.json`` lists every trial and the choice; a trial already in it is reused.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from provenance import provenance, write_json
from suites import SUITES, suite_options

from cl_prompts.data import load_benchmark
from cl_prompts.methods import load_model
from cl_prompts.random_state import thread_independent_math
from cl_prompts.results import RESULTS_FILE, read_results
from cl_prompts.run import RunConfig, run
from cl_prompts.run import checkpoints as ckpt
from cl_prompts.run.loop import TokenizedStream

# The grid of each method: option -> values, trials are the product in this order; a list
# of such grids is their union (a later, narrower grid around an earlier choice).
Grid = dict[str, list[Any]]
GRIDS: dict[str, Grid | list[Grid]] = {
    "ranpac": [{"layers": [1, 2, 4], "ridge": [10.0, 100.0, 300.0, 1000.0], "projection_dim": [5000]},
               # RanPAC's own width (10,000) with the deepest feature choices
               {"layers": [4, 6], "ridge": [100.0], "projection_dim": [10000]}],
    "slda": {"layers": [1, 2, 4], "shrinkage": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]},
    "ncm": {"layers": [1, 2, 4], "metric": ["cosine", "euclidean"]},
    # layers 4 came from an earlier grid ({"layers": [1, 4], "candidates", "fusion_weight"}:
    # benchmarks/results/tune-growing_pool); these re-chose the routing and fusion with it, the
    # second with ranpac's choice of 10,000 random features.
    # cross_task_passes 0 pins what those grids ran with (its default is 2 since the last grid).
    "growing_pool": [{"ridge": [100.0, 300.0], "candidates": [1, 2, 3], "fusion_weight": [0.25, 0.5, 1.0, 2.0],
                      "projection_dim": [5000], "cross_task_passes": [0]},
                     {"ridge": [100.0], "projection_dim": [10000], "candidates": [1, 2, 3],
                      "fusion_weight": [0.5, 1.0, 2.0], "cross_task_passes": [0]},
                     # one epoch is about 40 optimiser steps per task: whether faster prompt
                     # learning sharpens the prompted readout
                     {"ridge": [100.0], "projection_dim": [10000], "lr": [3e-2, 1e-1], "candidates": [1, 2, 3],
                      "fusion_weight": [0.5, 1.0, 2.0], "cross_task_passes": [0]},
                     # the prompted readout also fitted on samples through earlier tasks' prompts
                     {"ridge": [100.0], "projection_dim": [10000], "cross_task_passes": [2], "candidates": [1, 2, 3],
                      "fusion_weight": [0.5, 1.0, 2.0]},
                     # a quarter of the prompted compute (8 tokens), and the head that trains the prompts
                     {"ridge": [100.0], "projection_dim": [10000], "cross_task_passes": [2], "prompt_length": [8],
                      "head": ["cosine", "linear"], "candidates": [2], "fusion_weight": [0.5]}],
    # The paper methods and the references: each grid's first trial is the paper's (or the
    # documented) configuration; the rest are the choices a text user would try first: the
    # official code's key initialisation and E-prompt copy, a separate head learning rate
    # (one epoch is about 40 steps per task, little for a head at a prompt's rate), the
    # classifier feature, shorter prompts for short inputs, the lr.
    "dualprompt": [{"key_init": ["as_prompts", "jax_uniform"]},
                   {"key_init": ["jax_uniform"], "copy_previous_prompt": [True], "head_lr": [None, 1e-2, 3e-2]},
                   # one option at a time around that choice: the official code's clipping, a schedule
                   *({"key_init": ["jax_uniform"], "copy_previous_prompt": [True], "head_lr": [3e-2], **g}
                     for g in ({"grad_clip": [1.0]}, {"lr_schedule": ["cosine"]}))],
    "l2p": [{"key_init": ["as_prompts", "jax_uniform"], "feature": ["prompt", "pooled"]},
            {"key_init": ["as_prompts"], "feature": ["pooled"], "head_lr": [1e-2]},  # the head below lr 0.03
            # the official code's clipping at 1.0: the paper's configuration in full, then the choice above
            {"key_init": ["as_prompts"], "feature": ["prompt"], "grad_clip": [1.0]},
            {"key_init": ["as_prompts"], "feature": ["pooled"], "head_lr": [1e-2], "grad_clip": [1.0]}],
    "coda_prompt": [{"lr": [1e-3, 1e-2], "head_lr": [None, 1e-2]},
                    {"lr": [1e-3], "head_lr": [1e-2], "lr_schedule": ["cosine"]}],  # its paper's schedule
    "prompt_tuning": {"prompt_length": [20, 5], "head_lr": [None, 3e-2]},
    "linear_probe": [{"lr": [1e-2, 3e-2, 1e-1], "head": ["linear", "cosine"]},
                     {"lr": [3e-3], "head": ["linear", "cosine"]},  # below the grid's best edge
                     {"lr": [1e-2], "head": ["cosine"], "lr_schedule": ["cosine"]}],
    "joint": [{"lr": [1e-2, 3e-2], "head": ["linear", "cosine"]},
              {"lr": [3e-3], "head": ["cosine"]}],  # below the grid's best edge
    # the forgetting reference: its documented rates and slower ones (a smaller step per task
    # moves the shared encoder and head less); no logit masking, which would make it another method
    "finetune": {"lr": [2e-5, 5e-6], "head_lr": [1e-3, 1e-4]},
}
# Options added to a method's grid after trials were recorded without them, with the value
# those trials ran with: a recorded trial that lacks one counts as having that value.
ADDED_OPTIONS: dict[str, dict[str, Any]] = {
    "ranpac": {"layers": 1, "projection_dim": 5000},
    "slda": {"layers": 1},
    "ncm": {"layers": 1},
    "growing_pool": {"layers": 1, "projection_dim": 5000, "lr": 1e-2, "cross_task_passes": 0, "prompt_length": 32,
                     "head": "cosine"},
    "dualprompt": {"copy_previous_prompt": False, "head_lr": None, "grad_clip": None, "lr_schedule": "constant"},
    "linear_probe": {"lr_schedule": "constant"},
    "coda_prompt": {"lr_schedule": "constant"},
    "l2p": {"head_lr": None, "grad_clip": None},
}
# Options that only change predictions, not what is trained or accumulated: one run is
# trained per setting of the other options, and each of these is evaluated on its final
# model (the final row of the accuracy matrix, which is all final accuracy needs).
PREDICTION_ONLY: dict[str, tuple[str, ...]] = {"growing_pool": ("candidates", "fusion_weight")}


def _grids(method: str, grid: dict[str, Grid | list[Grid]]) -> list[Grid]:
    grids = grid.get(method, [])
    return [grids] if isinstance(grids, dict) else grids


def grid_options(method: str, grid: dict[str, Grid | list[Grid]] = GRIDS) -> set[str]:
    """Every option some grid of ``method`` varies."""
    return {k for g in _grids(method, grid) for k in g}


def trials(method: str, grid: dict[str, Grid | list[Grid]] = GRIDS) -> list[dict[str, Any]]:
    """The option dicts tried for ``method``: the product of its grid (of each, for a list), in order."""
    if method not in grid:
        raise ValueError(f"no grid for method {method!r}; grids: {sorted(grid)}")
    out: list[dict[str, Any]] = []
    for g in _grids(method, grid):
        for values in itertools.product(*g.values()):
            trial = dict(zip(g, values, strict=True))
            if trial not in out:
                out.append(trial)
    return out


def full_options(options: dict[str, Any], method: str | None) -> dict[str, Any]:
    """A recorded trial's options with the later-added ones of its method's grid filled in."""
    added = {k: v for k, v in ADDED_OPTIONS.get(method, {}).items() if k in grid_options(method)}
    return {**added, **options}


def choose(records: list[dict[str, Any]], benchmarks: list[str], seeds: list[int] | None = None) -> dict[str, Any]:
    """The trial with the best mean validation accuracy over ``benchmarks`` x ``seeds`` (first on
    ties); a setting lacking any pair is not a candidate. ``seeds=None``: records of any one seed
    (a record without one counts as seed 0). ``val_accuracy`` of the result is per benchmark, a
    mean over the seeds."""
    seeds = [0] if seeds is None else list(seeds)
    by_options: dict[str, dict[tuple[str, int], float]] = {}
    for r in records:
        key = json.dumps(full_options(r["options"], r.get("method")), sort_keys=True)
        by_options.setdefault(key, {})[(r["benchmark"], r.get("seed", 0))] = r["val_accuracy"]
    pairs = [(b, s) for b in benchmarks for s in seeds]
    complete = {k: v for k, v in by_options.items() if all(p in v for p in pairs)}
    if not complete:
        raise ValueError(f"no trial has a validation result on every benchmark and seed ({benchmarks} x {seeds})")
    mean = {k: sum(v[p] for p in pairs) / len(pairs) for k, v in complete.items()}
    best = max(complete, key=mean.__getitem__)  # first max wins
    per_benchmark = {b: sum(complete[best][(b, s)] for s in seeds) / len(seeds) for b in benchmarks}
    return {"options": json.loads(best), "mean_val_accuracy": mean[best], "val_accuracy": per_benchmark,
            "seeds": seeds}


def train_trial(base: RunConfig, method: str, trained: dict[str, Any], run_dir: Path, backbone, dataset) -> None:
    """Train one trial's run in ``run_dir``, evaluated after its last experience only; a finished
    run with the same options is reused, an unfinished one (killed) resumed."""
    finished = (run_dir / RESULTS_FILE).is_file()
    if finished and read_results(run_dir)["config"]["method_options"] == trained:
        return
    resume = (not finished and ckpt.has_checkpoint(run_dir)
              and ckpt.read_run_config(run_dir).get("method_options") == trained)
    cfg = RunConfig(**{**vars(base), "method": method, "method_options": dict(trained), "out": str(run_dir),
                       "resume": resume, "overwrite": not resume, "eval_every": 0, "progress": False,
                       "plots": False})
    run(cfg, backbone=backbone, dataset=dataset)


def final_accuracies(model, stream: TokenizedStream, variants: list[dict[str, Any]], batch_size: int) -> list[float]:
    """Final average accuracy (%) of ``model`` under each prediction-only ``variants`` (one
    pass over the evaluation data): the mean over experiences of each one's accuracy, as
    the final row of the runner's accuracy matrix."""
    model.eval()
    per_experience = []
    for e in range(len(stream.experiences)):
        idx = stream.indices("test", e)
        correct = np.zeros(len(variants))
        for start in range(0, len(idx), batch_size):
            inputs, targets = stream.batch("test", idx[start : start + batch_size])
            for i, logits in enumerate(model.logits_under(inputs, variants)):
                correct[i] += int((logits.argmax(dim=-1) == targets).sum())
        per_experience.append(100.0 * correct / len(idx))
    return [float(a) for a in np.mean(per_experience, axis=0)]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=sorted(GRIDS))
    p.add_argument("--benchmarks", nargs="+", default=list(SUITES), choices=SUITES)
    p.add_argument("--data-root", help="folder with clinc150/ and hwu64/")
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--seeds", "--seed", nargs="+", type=int, default=[0],
                   help="run seeds; the choice is the best mean over all of them (default: 0)")
    p.add_argument("--grid", type=json.loads, default={},
                   help='JSON {method: grid or list of grids} replacing those methods\' grids of GRIDS, '
                        'e.g. \'{"ranpac": {"ridge": [100], "projection_dim": [10000]}}\'')
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="benchmarks/results/tune")
    return p.parse_args(argv)


def main(argv=None, *, backbone=None, suites: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run the grids; returns (and writes) the tune.json document. ``suites`` overrides the benchmarks (tests)."""
    thread_independent_math()  # before any matrix product: the same bits as `cl-prompts run`
    args = parse_args(argv)
    if not isinstance(args.grid, dict) or not all(isinstance(g, (dict, list)) for g in args.grid.values()):
        raise ValueError(f"--grid must be a JSON object of method -> grid (or list of grids), got {args.grid!r}")
    grids = {**GRIDS, **args.grid}
    suites = suites or {b: suite_options(b, args.data_root) for b in args.benchmarks}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "tune.json"
    doc = json.loads(path.read_text()) if path.is_file() else {"trials": [], "chosen": {}}
    if backbone is None:
        from cl_prompts.backbones import BackboneConfig, load_backbone

        backbone = load_backbone(BackboneConfig(name_or_path=args.backbone))
    for name, options in suites.items():
        dataset = None
        stream = None
        for seed in args.seeds:
            base = RunConfig(**options, backbone=args.backbone, eval_split="val", seed=seed, device=args.device)
            if dataset is None:
                dataset = load_benchmark(base)  # validation split: the test data are not read
            for method in args.methods:
                post = PREDICTION_ONLY.get(method, ())
                pending = [opts for opts in trials(method, grids)
                           if not any(t["method"] == method and t["benchmark"] == name and t["seed"] == seed
                                      and full_options(t["options"], method) == full_options(opts, method)
                                      for t in doc["trials"])]
                groups: dict[str, list[dict[str, Any]]] = {}  # one trained run per setting of the other options
                for opts in pending:
                    groups.setdefault(json.dumps({k: v for k, v in opts.items() if k not in post}), []).append(opts)
                for key, group in groups.items():
                    start = time.perf_counter()
                    trained = json.loads(key)
                    # seed 0 keeps the run folders' names from before there were several seeds
                    parts = [name, method, *(f"{k}{v}" for k, v in trained.items())] + ([f"seed{seed}"] if seed else [])
                    run_dir = out / "runs" / "-".join(parts)
                    # the implicit values spelled out: a later change of a default does not change the trial
                    explicit = {k: v for k, v in full_options(trained, method).items() if k not in post}
                    train_trial(base, method, explicit, run_dir, backbone, dataset)
                    model = load_model(ckpt.latest_model_dir(run_dir), backbone)
                    if stream is None:
                        stream = TokenizedStream(dataset, backbone, args.device)
                    variants = [{k: v for k, v in opts.items() if k in post} for opts in group]
                    accuracies = final_accuracies(model, stream, variants, base.eval_batch_size)
                    seconds = round((time.perf_counter() - start) / len(group), 1)
                    for opts, val in zip(group, accuracies, strict=True):
                        doc["trials"].append({"method": method, "benchmark": name, "seed": seed, "options": opts,
                                              "val_accuracy": val, "seconds": seconds})
                        print(f"[tune] {name} {method} seed {seed} {opts}: val {val:.2f}", flush=True)
                    write_json(path, doc)
    prov = provenance("tune", argv, device=args.device)
    command = prov["command"]
    for method in args.methods:
        records = [t for t in doc["trials"] if t["method"] == method]
        doc["chosen"][method] = {**choose(records, list(suites), args.seeds), "benchmarks": list(suites),
                                 "command": command}
        print(f"[tune] {method}: chosen {doc['chosen'][method]}")
    doc.update(prov)  # the latest; each choice keeps the command that made it
    write_json(path, doc)
    return doc


if __name__ == "__main__":
    main()
