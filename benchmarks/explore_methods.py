"""Quick CLINC150-10 comparison of several methods through the runner: 1 epoch, frozen MiniLM, CPU or GPU.

Each method is one ``cl_prompts.run.runner.run`` (its own run folder under ``--runs``, with
results, plots and checkpoints) on one shared backbone and dataset; the figures of all of
them are gathered in one JSON.

    .venv/bin/python benchmarks/explore_methods.py --methods ncm linear_probe growing_pool \\
        --out benchmarks/results/explore_methods.json
    .venv/bin/python benchmarks/explore_methods.py --methods growing_pool:fast \\
        --config '{"growing_pool:fast": {"lr": 0.05}}' --per-class 10 --test-per-class 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from cl_prompts.backbones import default_backbone
from cl_prompts.data import load_clinc150
from cl_prompts.files import atomic_write_text
from cl_prompts.random_state import thread_independent_math
from cl_prompts.run.runner import RunConfig, run

KEPT = ("final_average_accuracy", "average_forgetting", "final_task_id_accuracy", "train_seconds",
        "eval_seconds", "accuracy_matrix")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=["ncm", "linear_probe", "growing_pool"],
                   help="method names; 'name:tag' runs a method again under another --config key")
    p.add_argument("--config", action="append", default=[],
                   help='per-method overrides as JSON: {"growing_pool": {"lr": 0.01}}')
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=256)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--per-class", type=int, default=None, help="train samples per class (quick runs)")
    p.add_argument("--test-per-class", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--runs", help="folder for the run folders (default: a temporary one)")
    p.add_argument("--out", default=None, help="the JSON of every method's figures")
    return p.parse_args(argv)


def main(argv=None) -> list[dict]:
    thread_independent_math()  # before any matrix product: the same bits as `cl-prompts run`
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides: dict[str, dict] = {}
    for text in args.config:
        for k, v in json.loads(text).items():
            overrides.setdefault(k, {}).update(v)
    dataset = load_clinc150(per_class=args.per_class, test_per_class=args.test_per_class)
    backbone = default_backbone(max_length=args.max_length)
    runs = Path(args.runs or tempfile.mkdtemp(prefix="explore-"))
    results = []
    for spec in args.methods:
        name = spec.split(":")[0]
        config = RunConfig(method=name, method_options=overrides.get(spec, {}), epochs=args.epochs, seed=args.seed,
                           batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
                           max_length=args.max_length, device=args.device, progress=False, plots=False,
                           out=str(runs / spec.replace(":", "-")))
        try:
            r = run(config, backbone=backbone, dataset=dataset)
            entry = {k: r.get(k) for k in KEPT}
        except Exception as err:  # keep going: one broken method must not lose the others' figures
            entry = {"error": f"{type(err).__name__}: {err}"}
        entry.update(method=name, tag=spec, overrides=overrides.get(spec, {}), run=config.out)
        print(json.dumps({k: v for k, v in entry.items() if k != "accuracy_matrix"}), flush=True)
        results.append(entry)
        if args.out:  # after every method, so a run cut short keeps what it finished
            atomic_write_text(Path(args.out), json.dumps(
                {"args": vars(args), "device": str(args.device), "results": results}, indent=1))
    return results


if __name__ == "__main__":
    main()
