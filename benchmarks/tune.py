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
``<out>/tune.json`` lists every trial and the choice; a trial already in it is reused, and
a folder holds the trials of one backbone and protocol (``SETTING``) only.

On a causal LM the grids are ``CAUSAL_GRIDS`` (``tune_grids.py``), with the LLM protocol's options:

    python benchmarks/tune.py --backbone smollm2 --query-encoder minilm --benchmarks hwu64 \
        --train-per-class 20 --test-per-class 5 --batch-size 16 --out benchmarks/results/tune-llm-hwu64-fs20
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
from suites import suite_options, suite_parser
from tune_grids import ADDED_OPTIONS, CAUSAL_GRIDS, GRIDS, PREDICTION_ONLY, Grid

from cl_prompts.data import load_benchmark
from cl_prompts.methods import load_model
from cl_prompts.methods.registry import is_causal
from cl_prompts.random_state import thread_independent_math
from cl_prompts.results import RESULTS_FILE, read_results
from cl_prompts.run import RunConfig, run
from cl_prompts.run import checkpoints as ckpt
from cl_prompts.run.loop import TokenizedStream

# What the runs of one tune folder share besides the benchmark: runs made with another
# backbone or protocol are not comparable, so a folder never mixes them.
SETTING = ("backbone", "query_encoder", "train_per_class", "test_per_class", "experiences", "batch_size")


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


def full_options(options: dict[str, Any], method: str | None,
                 added: dict[str, dict[str, Any]] = ADDED_OPTIONS,
                 grid: dict[str, Grid | list[Grid]] = GRIDS) -> dict[str, Any]:
    """A recorded trial's options with the later-added ones of its method's grid filled in."""
    filled = {k: v for k, v in added.get(method, {}).items() if k in grid_options(method, grid)}
    return {**filled, **options}


def choose(records: list[dict[str, Any]], benchmarks: list[str], seeds: list[int] | None = None,
           added: dict[str, dict[str, Any]] = ADDED_OPTIONS) -> dict[str, Any]:
    """The trial with the best mean validation accuracy over ``benchmarks`` x ``seeds`` (first on
    ties); a setting lacking any pair is not a candidate. ``seeds=None``: records of any one seed
    (a record without one counts as seed 0). ``val_accuracy`` of the result is per benchmark, a
    mean over the seeds."""
    seeds = [0] if seeds is None else list(seeds)
    by_options: dict[str, dict[tuple[str, int], float]] = {}
    for r in records:
        key = json.dumps(full_options(r["options"], r.get("method"), added), sort_keys=True)
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
    p = suite_parser(__doc__)
    p.add_argument("--methods", nargs="+", help="default: every method with a grid for the backbone")
    p.add_argument("--seeds", "--seed", nargs="+", type=int, default=[0],
                   help="run seeds; the choice is the best mean over all of them (default: 0)")
    p.add_argument("--grid", type=json.loads, default={},
                   help='JSON {method: grid or list of grids} replacing those methods\' grids of GRIDS, '
                        'e.g. \'{"ranpac": {"ridge": [100], "projection_dim": [10000]}}\'')
    p.add_argument("--query-encoder", help="a causal LM's query from this sentence encoder (e.g. minilm)")
    p.add_argument("--train-per-class", type=int, help="the few-shot protocol: training samples per class")
    p.add_argument("--test-per-class", type=int, help="evaluated (validation) samples per class")
    p.add_argument("--experiences", type=int, help="experiences of every benchmark (default: the suite's)")
    p.add_argument("--batch-size", type=int, default=RunConfig.batch_size)
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                   help="skip CLINC150's out-of-scope calibration (long on a causal LM; accuracy is unchanged)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="benchmarks/results/tune")
    return p.parse_args(argv)


def main(argv=None, *, backbone=None, suites: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run the grids; returns (and writes) the tune.json document. ``suites`` overrides the benchmarks (tests)."""
    thread_independent_math()  # before any matrix product: the same bits as `cl-prompts run`
    args = parse_args(argv)
    if not isinstance(args.grid, dict) or not all(isinstance(g, (dict, list)) for g in args.grid.values()):
        raise ValueError(f"--grid must be a JSON object of method -> grid (or list of grids), got {args.grid!r}")
    suites = suites or {b: suite_options(b, args.data_root) for b in args.benchmarks}
    setting = {k: getattr(args, k) for k in SETTING}
    shared = {k: v for k, v in setting.items() if v is not None and k != "experiences"}
    shared.update({"device": args.device, "calibrate": args.calibrate})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "tune.json"
    doc = json.loads(path.read_text()) if path.is_file() else {"trials": [], "chosen": {}, "setting": setting}
    if doc.get("setting", setting) != setting:
        diff = {k: (doc["setting"].get(k), v) for k, v in setting.items() if doc["setting"].get(k) != v}
        raise ValueError(f"{path} holds trials made with other settings (theirs, these): {diff}; "
                         "use another --out")
    doc["setting"] = setting
    if backbone is None:
        from cl_prompts.run.runner import load_run_backbone

        backbone = load_run_backbone(RunConfig(**shared))
    causal = is_causal(backbone)
    grids = {**(CAUSAL_GRIDS if causal else GRIDS), **args.grid}
    added = {} if causal else ADDED_OPTIONS  # the encoder grids' history only
    methods = args.methods or sorted(CAUSAL_GRIDS if causal else GRIDS)
    for name, options in suites.items():
        dataset = None
        stream = None
        for seed in args.seeds:
            experiences = {"experiences": args.experiences} if args.experiences else {}
            base = RunConfig(**{**options, **experiences}, **shared, eval_split="val", seed=seed)
            if dataset is None:
                dataset = load_benchmark(base)  # validation split: the test data are not read
            for method in methods:
                post = PREDICTION_ONLY.get(method, ()) if not causal else ()
                pending = [opts for opts in trials(method, grids)
                           if not any(t["method"] == method and t["benchmark"] == name and t["seed"] == seed
                                      and full_options(t["options"], method, added, grids)
                                      == full_options(opts, method, added, grids)
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
                    explicit = {k: v for k, v in full_options(trained, method, added, grids).items()
                                if k not in post}
                    train_trial(base, method, explicit, run_dir, backbone, dataset)
                    if post:
                        model = load_model(ckpt.latest_model_dir(run_dir), backbone)
                        if stream is None:
                            stream = TokenizedStream(dataset, backbone, args.device)
                        variants = [{k: v for k, v in opts.items() if k in post} for opts in group]
                        accuracies = final_accuracies(model, stream, variants, base.eval_batch_size)
                    else:  # the run's own final evaluation is the same measure
                        accuracies = [read_results(run_dir)["final_average_accuracy"]]
                    seconds = round((time.perf_counter() - start) / len(group), 1)
                    for opts, val in zip(group, accuracies, strict=True):
                        doc["trials"].append({"method": method, "benchmark": name, "seed": seed, "options": opts,
                                              "val_accuracy": val, "seconds": seconds})
                        print(f"[tune] {name} {method} seed {seed} {opts}: val {val:.2f}", flush=True)
                    write_json(path, doc)
    prov = provenance("tune", argv, device=args.device)
    command = prov["command"]
    for method in methods:
        records = [t for t in doc["trials"] if t["method"] == method]
        doc["chosen"][method] = {**choose(records, list(suites), args.seeds, added), "benchmarks": list(suites),
                                 "command": command}
        print(f"[tune] {method}: chosen {doc['chosen'][method]}")
    doc.update(prov)  # the latest; each choice keeps the command that made it
    write_json(path, doc)
    return doc


if __name__ == "__main__":
    main()
