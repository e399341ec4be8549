"""Choose one option of a method from finished validation runs, the way tune.py chooses.

    python benchmarks/choose_from_runs.py --method growing_pool --option cross_task_passes \\
        --runs benchmarks/results/default_run_val/*.json \\
        --keep-options-of benchmarks/results/tune-growing_pool-fusion/tune.json \\
        --out benchmarks/results/tune-growing_pool-cross/tune.json

The runs are JSON files of ``bench_default_run.py`` (or a run's ``results.json``) made with
``--eval-split val``; runs on another split, of another method or in another precision are
left out (named). Every run must share its method config except ``--option``. Each value of
the option is scored on the (benchmark, seed) pairs that every value has: the mean over the
benchmarks of each benchmark's mean over its seeds. The best value wins (ties: the smaller).
``--out`` is a tune.json (``chosen`` as benchmarks/tune.py writes it), so ``headline.py``
names this choice beside the others; its options are the earlier choice of
``--keep-options-of`` with the option chosen here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from provenance import provenance, write_json


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True)
    p.add_argument("--option", required=True, help="the method config field the runs differ in")
    p.add_argument("--runs", nargs="+", required=True, help="validation runs' JSON files")
    p.add_argument("--precision", default="fp32", help="keep only the runs in this precision")
    p.add_argument("--keep-options-of", help="a tune.json whose choice for --method the result extends")
    p.add_argument("--out", required=True, help="the tune.json to write (refused if it exists)")
    return p.parse_args(argv)


def usable(run: dict, method: str, precision: str) -> str | None:
    """Why a run cannot take part (None: it can)."""
    if run.get("method") != method:
        return f"method {run.get('method')!r}"
    split = run.get("eval_split", run.get("config", {}).get("eval_split"))
    if split != "val":
        return f"evaluated on {split!r}"
    ran_in = run.get("precision", run.get("config", {}).get("precision", "fp32"))
    if ran_in != precision:
        return f"precision {ran_in!r}"
    if "method_config" not in run:
        return "no method_config recorded"
    return None


def choose(runs: dict[str, dict], option: str) -> dict[str, Any]:
    """Score every value of ``option`` over the (benchmark, seed) pairs they all have."""
    shared = {json.dumps({k: v for k, v in r["method_config"].items() if k != option}, sort_keys=True)
              for r in runs.values()}
    if len(shared) != 1:
        raise SystemExit(f"the runs differ in more than {option!r}: {len(shared)} method configs")
    acc: dict[Any, dict[tuple[str, int], float]] = {}
    for name, r in runs.items():
        pair = (r["benchmark"], int(r["seed"]))
        seen = acc.setdefault(r["method_config"][option], {})
        if pair in seen:
            raise SystemExit(f"two runs of {option}={r['method_config'][option]!r} on {pair}, one of them {name}")
        seen[pair] = float(r["final_average_accuracy"])
    pairs = sorted(set.intersection(*(set(v) for v in acc.values())))
    if not pairs:
        raise SystemExit("no (benchmark, seed) pair has a run for every value")
    benchmarks = sorted({b for b, _ in pairs})
    scores = {}
    for value, seen in acc.items():
        per_benchmark = {b: float(np.mean([seen[p] for p in pairs if p[0] == b])) for b in benchmarks}
        scores[value] = {"val_accuracy": per_benchmark, "mean_val_accuracy": float(np.mean(list(per_benchmark.values()))),
                         "per_seed": {f"{b}/seed{s}": seen[(b, s)] for b, s in pairs}}
    best = max(sorted(scores), key=lambda v: scores[v]["mean_val_accuracy"])  # sorted: ties go to the smaller
    return {"pairs": [list(p) for p in pairs], "scores": scores, "best": best}


def main(argv=None) -> Path:
    args = parse_args(argv)
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"{out} exists; remove it to choose again")
    runs = {}
    for f in args.runs:
        r = json.loads(Path(f).read_text())
        why = usable(r, args.method, args.precision)
        if why:
            print(f"[choose] left out {f}: {why}")
        else:
            runs[f] = r
    if not runs:
        raise SystemExit("no usable run")
    result = choose(runs, args.option)
    options = {args.option: result["best"]}
    if args.keep_options_of:
        earlier = json.loads(Path(args.keep_options_of).read_text())["chosen"][args.method]["options"]
        options = {**earlier, **options}
    best = result["scores"][result["best"]]
    seeds = sorted({s for _, s in result["pairs"]})
    doc = {**provenance("choose_from_runs", argv), "runs": sorted(runs), "option": args.option,
           "pairs": result["pairs"], "scores": {str(k): v for k, v in result["scores"].items()},
           "chosen": {args.method: {"options": options, "mean_val_accuracy": best["mean_val_accuracy"],
                                    "val_accuracy": best["val_accuracy"], "seeds": seeds,
                                    "benchmarks": sorted(best["val_accuracy"])}}}
    write_json(out, doc)
    for value, s in sorted(result["scores"].items()):
        print(f"[choose] {args.option}={value}: mean {s['mean_val_accuracy']:.2f} "
              + " ".join(f"{b} {a:.2f}" for b, a in s["val_accuracy"].items()))
    print(f"[choose] {args.option}={result['best']} -> {out}")
    return out


if __name__ == "__main__":
    main()
