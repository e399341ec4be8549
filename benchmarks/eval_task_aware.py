"""A finished run's final model evaluated with the task label given (task-aware), beside its
class-incremental figure.

    python benchmarks/eval_task_aware.py RUN_DIR [--out FILE]

For the methods that can use a task label (``task_aware_logits``): ``progressive_prompts``
(the paper's setting: each experience's classes under its prompt and the earlier ones) and
``growing_pool`` on a causal LM (under the true task's prompt: the ceiling of its routing).
Each evaluation sample of experience e is ranked among e's classes only. Writes the
accuracy per experience, their mean (the task-aware final average accuracy) and the run's
own class-incremental final average accuracy.
"""

from __future__ import annotations

import argparse
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


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", type=Path, help="default: RUN_DIR/task_aware.json")
    return p.parse_args(argv)


@torch.no_grad()
def task_aware_accuracy(model, stream: TokenizedStream, batch_size: int) -> list[float]:
    """Accuracy (%) on each experience's evaluation samples, its task label given."""
    out = []
    for e in range(len(stream.experiences)):
        idx = stream.indices("test", e)
        correct = 0
        for start in range(0, len(idx), batch_size):
            x, y = stream.batch("test", idx[start:start + batch_size])
            correct += int((model.task_aware_logits(x, e).argmax(-1) == y).sum())
        out.append(100.0 * correct / len(idx))
    return out


def main(argv=None) -> dict:
    thread_independent_math()
    args = parse_args(argv)
    results = read_results(args.run_dir)
    config = RunConfig(**read_config_file(args.run_dir / "results.json"))
    backbone = load_run_backbone(config)
    model = load_model(latest_model_dir(args.run_dir), backbone).eval()
    if not hasattr(model, "task_aware_logits"):
        raise SystemExit(f"{results['method']} cannot use a task label (it has no task_aware_logits)")
    started = time.perf_counter()
    stream = TokenizedStream(run_subset(load_benchmark(config), config), backbone, "cpu")
    per = task_aware_accuracy(model, stream, args.batch_size)
    doc = {**provenance("eval_task_aware", argv), "run": str(args.run_dir), "method": results["method"],
           "eval_split": config.eval_split, "per_experience": per, "final_average_accuracy": sum(per) / len(per),
           "class_incremental_final_average_accuracy": results["final_average_accuracy"],
           "seconds": round(time.perf_counter() - started, 1)}
    write_json(args.out or args.run_dir / "task_aware.json", doc)
    print(f"task-aware final average accuracy {doc['final_average_accuracy']:.2f} "
          f"(class-incremental {results['final_average_accuracy']:.2f})")
    return doc


if __name__ == "__main__":
    main()
