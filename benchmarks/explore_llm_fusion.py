"""``growing_pool`` on a causal LM: ``route_weight`` and ``candidates`` chosen on validation data.

    python benchmarks/explore_llm_fusion.py RUN_DIR --out benchmarks/results/llm-hwu64-fs20/fusion-val.json

RUN_DIR: a finished ``growing_pool`` run on a causal LM made with ``--eval-split val`` (the
test data is never read). Its final model is loaded from the checkpoint and every
validation sample is scored once, under the prompts of its ``max(--candidates)`` nearest
tasks: the answer log-likelihood of each candidate class, and the routing logits. The
accuracy of every (candidates, route_weight) pair is then a sum of these: a smaller
``candidates`` keeps the first tasks of a larger one. ``route_weight`` = inf is the
routing classifier alone (a ``ranpac`` on the LLM's features). Ties go to the cheaper
setting (fewer candidates), then to the smaller weight.

``--test-run DIR``: a finished run of the same method config on the test split; its final
model is scored on its test samples with the chosen pair, and the final average accuracy
(the mean over experiences of their accuracy) is written beside the grid. Only prediction
options are chosen here, so the trained model does not change.

``--score-test``: instead, score the validation run's own final model on the test split,
at the chosen pair and at the run's own settings. One training then serves both splits:
CLINC150's training data does not depend on the split evaluated; a ``file:`` benchmark's
model was trained without its validation rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import torch
from provenance import provenance, write_json

from cl_prompts.data import load_benchmark
from cl_prompts.methods import load_model
from cl_prompts.random_state import thread_independent_math
from cl_prompts.results import read_results
from cl_prompts.run import RunConfig
from cl_prompts.run.checkpoints import latest_model_dir
from cl_prompts.run.config import read_config_file
from cl_prompts.run.loop import TokenizedStream
from cl_prompts.run.runner import load_run_backbone, run_subset

WEIGHTS = (0.0, 0.3, 1.0, 3.0, 10.0, 30.0, math.inf)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--candidates", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS))
    p.add_argument("--batch-size", type=int, default=32)
    test = p.add_mutually_exclusive_group()
    test.add_argument("--test-run", type=Path, help="a test-split run of the same config: score the chosen pair on it")
    test.add_argument("--score-test", action="store_true",
                      help="score the validation run's own final model on the test split")
    p.add_argument("--grid", type=Path, help="an earlier --out of this validation run: take its grid and choice "
                                             "instead of scoring the validation samples again")
    p.add_argument("--out", type=Path, required=True)
    return p.parse_args(argv)


@torch.no_grad()
def score(model, stream: TokenizedStream, most: int, batch_size: int) -> dict[str, torch.Tensor]:
    """Answer scores (N, C) of the candidate classes (-inf elsewhere), routing logits (N, C),
    candidate tasks (N, most) and targets (N,) of every validation sample."""
    model.config = dataclasses.replace(model.config, candidates=most, route_weight=0.0)
    idx = torch.cat([stream.indices("test", e) for e in range(len(stream.experiences))])
    out: dict[str, list] = {"answers": [], "route": [], "cands": [], "y": []}
    for start in range(0, len(idx), batch_size):
        x, y = stream.batch("test", idx[start:start + batch_size])
        route, cands = model.candidate_tasks(x)
        out["answers"].append(model(x).cpu())
        out["route"].append(route.cpu())
        out["cands"].append(cands.cpu())
        out["y"].append(y.cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def accuracy(s: dict[str, torch.Tensor], class_task: torch.Tensor, m: int, weight: float) -> float:
    if math.isinf(weight):
        return 100.0 * float((s["route"].argmax(-1) == s["y"]).float().mean())
    kept = (class_task[None, None, :] == s["cands"][:, :m, None]).any(1)  # (N, C) classes of the first m tasks
    logits = (s["answers"] + weight * s["route"]).masked_fill(~kept, float("-inf"))
    return 100.0 * float((logits.argmax(-1) == s["y"]).float().mean())


def task_id_accuracy(s: dict[str, torch.Tensor], class_task: torch.Tensor) -> float:
    """How often (%) the first candidate task is the sample's own."""
    return 100.0 * float((class_task[s["y"]] == s["cands"][:, 0]).float().mean())


def per_experience_accuracy(s: dict[str, torch.Tensor], class_task: torch.Tensor, m: int, weight: float) -> list[float]:
    """Accuracy (%) on each experience's samples with ``m`` candidates and ``weight``."""
    out = []
    for task in range(int(class_task.max()) + 1):
        rows = class_task[s["y"]] == task
        out.append(accuracy({k: v[rows] for k, v in s.items()}, class_task, m, weight))
    return out


def load_scored(run_dir: Path, most: int, batch_size: int, eval_split: str | None = None):
    """The run's config, final model and the scores of its evaluation samples (of
    ``eval_split`` when given, else of the split the run evaluated)."""
    config = RunConfig(**read_config_file(run_dir / "results.json"))
    if eval_split is not None:
        config = dataclasses.replace(config, eval_split=eval_split)
    backbone = load_run_backbone(config)
    model = load_model(latest_model_dir(run_dir), backbone).eval()
    stream = TokenizedStream(run_subset(load_benchmark(config), config), backbone, "cpu")
    return config, model, score(model, stream, most, batch_size)


def main(argv=None) -> Path:
    thread_independent_math()
    args = parse_args(argv)
    results = read_results(args.run_dir)
    config = RunConfig(**read_config_file(args.run_dir / "results.json"))
    test = read_results(args.test_run) if args.test_run else None
    if test is not None and (test["config"]["eval_split"] != "test" or test["method_config"] != results["method_config"]):
        raise SystemExit(f"{args.test_run} must be a test-split run of the same method config as {args.run_dir}")
    if config.eval_split != "val" or results["method"] != "growing_pool":
        raise SystemExit(f"{args.run_dir} must be a growing_pool run made with --eval-split val")
    started = time.perf_counter()
    doc = {**provenance("explore_llm_fusion", argv), **(reused_grid(args.grid, args.run_dir) if args.grid
                                                        else validation_grid(args, results))}
    best = {**doc["chosen"], "route_weight": float(doc["chosen"]["route_weight"])}
    if test is not None:
        m, w = best["candidates"], best["route_weight"]
        _, test_model, t = load_scored(args.test_run, m, args.batch_size)
        per = per_experience_accuracy(t, test_model.class_task.cpu(), m, w)
        doc["test"] = {"run": str(args.test_run), "test_samples": int(len(t["y"])), "per_experience": per,
                       "final_average_accuracy": sum(per) / len(per),
                       "at_run_settings": test["final_average_accuracy"]}
        print(f"test, chosen pair: final average accuracy {doc['test']['final_average_accuracy']:.2f} "
              f"(the run's own settings: {test['final_average_accuracy']:.2f})")
    if args.score_test:
        doc["test"] = own_model_on_test(args, results, best)
        print(f"test, chosen pair: final average accuracy {doc['test']['final_average_accuracy']:.2f} "
              f"(the run's own settings: {doc['test']['at_run_settings']:.2f}; "
              f"the routing alone: {doc['test']['routing_alone']:.2f})")
    doc["seconds"] = round(time.perf_counter() - started, 1)  # the scoring of validation and test
    write_json(args.out, doc)
    for g in doc["grid"]:
        print(f"candidates {g['candidates']}  route_weight {g['route_weight']:>5}  val {g['val_accuracy']:.2f}")
    print(f"task identification {doc['task_id_accuracy']:.2f}; chosen {doc['chosen']}: {args.out}")
    return args.out


def own_model_on_test(args: argparse.Namespace, results: dict, best: dict) -> dict:
    """The validation run's final model on the test split: final average accuracy at the
    chosen pair and at the run's own (candidates, route_weight)."""
    own_m, own_w = results["method_config"]["candidates"], float(results["method_config"]["route_weight"])
    m, w = best["candidates"], best["route_weight"]
    _, model, t = load_scored(args.run_dir, max(m, own_m), args.batch_size, eval_split="test")
    class_task = model.class_task.cpu()
    per = per_experience_accuracy(t, class_task, m, w)
    own = per_experience_accuracy(t, class_task, own_m, own_w)
    alone = per_experience_accuracy(t, class_task, 1, math.inf)
    task_id = task_id_accuracy(t, class_task)
    return {"run": str(args.run_dir), "split": "test", "test_samples": int(len(t["y"])), "per_experience": per,
            "final_average_accuracy": sum(per) / len(per), "task_id_accuracy": task_id,
            "at_run_settings": sum(own) / len(own), "routing_alone": sum(alone) / len(alone)}


def _weight(w: float) -> float | str:
    return str(w) if math.isinf(w) else w  # JSON has no infinity


def validation_grid(args: argparse.Namespace, results: dict) -> dict:
    """Score the validation run's samples once; the accuracy of every (candidates, route_weight)."""
    _, model, s = load_scored(args.run_dir, max(args.candidates), args.batch_size)
    class_task = model.class_task.cpu()
    grid = [{"candidates": m, "route_weight": w, "val_accuracy": accuracy(s, class_task, m, w)}
            for m in sorted(args.candidates) for w in sorted(args.weights)]
    best = max(grid, key=lambda g: (round(g["val_accuracy"], 6), -g["candidates"], -g["route_weight"]))
    task_id = task_id_accuracy(s, class_task)
    return {
        "run": str(args.run_dir), "run_config": results["config"], "method_config": results["method_config"],
        "validation_samples": int(len(s["y"])), "task_id_accuracy": task_id,
        "grid": [{**g, "route_weight": _weight(g["route_weight"])} for g in grid],
        "chosen": {"candidates": best["candidates"], "route_weight": _weight(best["route_weight"]),
                   "val_accuracy": best["val_accuracy"]},
    }


def reused_grid(path: Path, run_dir: Path) -> dict:
    """The grid and choice an earlier call wrote for ``run_dir`` (refused for another run)."""
    earlier = json.loads(path.read_text())
    if Path(earlier.get("run", "")).resolve() != run_dir.resolve():
        raise SystemExit(f"{path} holds the grid of {earlier.get('run')!r}, not of {str(run_dir)!r}")
    keys = ("run", "run_config", "method_config", "validation_samples", "task_id_accuracy", "grid", "chosen")
    return {**{k: earlier[k] for k in keys}, "grid_from": str(path)}


if __name__ == "__main__":
    main()
