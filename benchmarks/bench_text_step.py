"""The default text run's training step against the floor: MiniLM-L6, CLINC150's first experience.

- ours: the runner's loop (``cl_prompts.run.loop.train_experience``) training the default
  method (``growing_pool``, defaults) for one epoch on the experience, then its
  ``end_experience`` (the samples once more through the final prompts, the readouts
  solved) and its evaluation on the experience's test sentences, timed apart;
- floor: the prompted forward + backward alone on the same batches (a prompt as long as
  ours, a linear head, Adam; no frozen query pass, no statistics);
- floor_two_pass: the floor plus an uncached frozen query pass per step (growing_pool
  needs the frozen query of every training sample for its routing statistics).

Each in every ``--precisions``, ``--repeats`` times interleaved (this machine is shared:
single timings vary by 15%); median samples/s and ours/floor ratios, JSON in ``--out``.

    .venv/bin/python benchmarks/bench_text_step.py                # 40 sentences per intent, fp32 and bf16
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from provenance import provenance, write_json

from cl_prompts.backbones import default_backbone
from cl_prompts.data import load_clinc150
from cl_prompts.methods import build_model
from cl_prompts.random_state import thread_independent_math
from cl_prompts.run import RunConfig
from cl_prompts.run.loop import TokenizedStream, evaluate, train_experience

ROOT = Path(__file__).resolve().parents[1]


class NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kw) -> None: ...


def batches(stream: TokenizedStream, batch_size: int, seed: int) -> list[tuple[dict, torch.Tensor]]:
    """The experience's batches in the order the runner draws them (its seed for experience 0)."""
    idx = stream.indices("train", 0)
    order = idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed * 100_003))]
    return [stream.batch("train", order[i : i + batch_size]) for i in range(0, len(order), batch_size)]


def run_ours(stream, dataset, backbone, args) -> dict:
    backbone.clear_query_cache()
    torch.manual_seed(0)
    model = build_model("growing_pool", backbone, dataset.num_classes)
    config = RunConfig(batch_size=args.batch_size, progress=False)
    start = time.perf_counter()
    model.begin_experience(0, stream.experiences[0])
    seen = train_experience(model, stream, 0, config, NoBar())
    train = time.perf_counter() - start
    start = time.perf_counter()
    model.end_experience(0)
    end = time.perf_counter() - start
    start = time.perf_counter()
    evaluate(model, stream, 0, 128)
    return {"samples": seen, "train_seconds": train, "end_experience_seconds": end,
            "eval_samples_per_s": len(stream.indices("test", 0)) / (time.perf_counter() - start),
            "prompt_tokens": model.config.prompt_length * model.config.prompts_per_task}


def run_floor(stream, dataset, backbone, args, tokens: int, two_pass: bool) -> dict:
    torch.manual_seed(0)
    prompts = torch.nn.Parameter(torch.randn(tokens, backbone.hidden_size) * 0.02)
    head = torch.nn.Linear(backbone.hidden_size, dataset.num_classes)
    opt = torch.optim.Adam([prompts, *head.parameters()], lr=1e-2)
    data = batches(stream, args.batch_size, seed=0)
    start = time.perf_counter()
    for inputs, targets in data:
        if two_pass:
            backbone.query_features(inputs, use_cache=False, layers=4)
        out = backbone(inputs, input_prompts=prompts.expand(len(targets), -1, -1))
        loss = F.cross_entropy(head(out.pooled), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {"samples": sum(len(t) for _, t in data), "train_seconds": time.perf_counter() - start}


def main(argv=None) -> dict:
    thread_independent_math()  # before any matrix product: the same bits as `cl-prompts run`
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=40, help="training sentences per intent (CLINC150 has 100)")
    p.add_argument("--test-per-class", type=int, default=20, help="test sentences per intent (evaluation speed)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--repeats", type=int, default=3, help="interleaved repetitions; the median is reported")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/text_step_speed.json"))
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    dataset = load_clinc150(args.data_root, per_class=args.per_class, test_per_class=args.test_per_class)
    backbone = default_backbone(max_length=48)
    stream = TokenizedStream(dataset, backbone, "cpu")
    systems = {
        "ours": lambda: run_ours(stream, dataset, backbone, args),
        "floor": lambda: run_floor(stream, dataset, backbone, args, tokens, False),
        "floor_two_pass": lambda: run_floor(stream, dataset, backbone, args, tokens, True),
    }
    tokens = build_model("growing_pool", backbone, dataset.num_classes).config.prompt_length
    rows = []
    for precision in args.precisions:
        backbone.set_precision(precision)
        runs: dict[str, list[dict]] = {name: [] for name in systems}
        for _ in range(args.repeats):  # interleaved: a slow spell of a shared machine hits every system
            for name, measure in systems.items():
                runs[name].append(measure())
        for name, tries in runs.items():
            row = {**tries[0], "system": name, "precision": precision,
                   "samples_per_s_each": [t["samples"] / t["train_seconds"] for t in tries]}
            row["samples_per_s"] = statistics.median(row["samples_per_s_each"])
            if name == "ours":
                for key in ("end_experience_seconds", "eval_samples_per_s"):
                    row[key] = statistics.median(t[key] for t in tries)
            rows.append(row)
            extra = (f", end_experience {row['end_experience_seconds']:.1f} s, "
                     f"eval {row['eval_samples_per_s']:.1f} samples/s" if name == "ours" else "")
            each = ", ".join(f"{v:.1f}" for v in row["samples_per_s_each"])
            print(f"{name:15s} {precision:5s} median {row['samples_per_s']:6.1f} samples/s ({each}){extra}",
                  flush=True)
    by = {(r["system"], r["precision"]): r for r in rows}
    ratios = {f"ours_{p}_over_{f}": by[("ours", p)]["samples_per_s"] / by[(f, p)]["samples_per_s"]
              for p in args.precisions for f in ("floor", "floor_two_pass")}
    for k, v in ratios.items():
        print(f"{k:30s} {v:.2f}x")
    result = {"rows": rows, "ratios": ratios, "threads": torch.get_num_threads(),
              "setting": {"per_class": args.per_class, "test_per_class": args.test_per_class,
                          "batch_size": args.batch_size, "experience": 0, "repeats": args.repeats},
              **provenance("bench_text_step", argv)}
    write_json(args.out, result, indent=2)
    print(f"written: {args.out}")
    return result


if __name__ == "__main__":
    main()
