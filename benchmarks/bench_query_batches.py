"""The frozen query passes of an experience's training samples: in training batches, or ahead.

A method that reads each training sample's frozen query (``frozen_query_layers``:
``growing_pool``, the closed-form methods, the pool methods) used to compute it inside
training, in the training batches: ``--batch-size`` sentences drawn at random, padded to
the longest. The runner now computes them before training, in length-sorted batches of
the evaluation size (``cl_prompts.run.loop.cache_training_queries``), and training finds
them in the query cache. Both ways over the same CLINC150 training sentences (the first
``--experiences`` experiences, MiniLM-L6, the last ``--layers`` layers' features as
``growing_pool`` reads them), ``--repeats`` times interleaved; the median seconds to
``--out``, and the largest difference of the two ways' features (the batching changes only
float rounding).

    .venv/bin/python benchmarks/bench_query_batches.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from provenance import provenance, write_json
from suites import suite_options

from cl_prompts.backbones import BackboneConfig, load_backbone
from cl_prompts.data import load_benchmark
from cl_prompts.run import RunConfig
from cl_prompts.run.loop import TokenizedStream

ROOT = Path(__file__).resolve().parents[1]


def passes(backbone, stream: TokenizedStream, order: torch.Tensor, batch_size: int, layers: int) -> torch.Tensor:
    """(N, layers * D) features of ``order``'s samples, in ``order``, batch by batch."""
    rows = []
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            inputs, _ = stream.batch("train", order[start : start + batch_size])
            rows.append(backbone.query_features(inputs, layers=layers, use_cache=False))
    return torch.cat(rows)


def measure(backbone, stream: TokenizedStream, idx: torch.Tensor, args) -> dict:
    """Median seconds of the two ways, and how far apart their features are."""
    shuffled = idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(0))]  # as training draws
    ahead = stream.shortest_first("train", idx)
    times: dict[str, list[float]] = {"training_batches": [], "sorted_ahead": []}
    feats = {}
    for _ in range(args.repeats):
        for name, order, size in (("training_batches", shuffled, args.batch_size),
                                  ("sorted_ahead", ahead, args.eval_batch_size)):
            start = time.perf_counter()
            f = passes(backbone, stream, order, size, args.layers)
            times[name].append(time.perf_counter() - start)
            feats[name] = f[torch.argsort(order)]  # back to the order of idx's sorted ids
    seconds = {k: statistics.median(v) for k, v in times.items()}
    return {"samples": len(idx), "seconds": seconds, "all_seconds": times,
            "speedup": seconds["training_batches"] / seconds["sorted_ahead"],
            "max_abs_difference": float((feats["training_batches"] - feats["sorted_ahead"]).abs().max())}


def main(argv: list[str] | None = None, *, backbone=None, dataset=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiences", type=int, default=2, help="how many of CLINC150's first experiences")
    p.add_argument("--batch-size", type=int, default=RunConfig.batch_size)
    p.add_argument("--eval-batch-size", type=int, default=RunConfig.eval_batch_size)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/query_batches.json"))
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    config = RunConfig(**suite_options("clinc150"))
    if backbone is None:
        backbone = load_backbone(BackboneConfig(name_or_path=config.backbone, max_length=config.max_length))
    if dataset is None:
        dataset = load_benchmark(config)
    stream = TokenizedStream(dataset, backbone, "cpu")
    idx = torch.cat([stream.indices("train", e) for e in range(min(args.experiences, len(stream.experiences)))])
    row = measure(backbone, stream, idx, args)
    print(f"{row['samples']} sentences: training batches {row['seconds']['training_batches']:.1f} s, "
          f"sorted ahead {row['seconds']['sorted_ahead']:.1f} s ({row['speedup']:.2f}x); "
          f"features differ by at most {row['max_abs_difference']:.1e}")
    result = {**provenance("bench_query_batches", argv), **row, "batch_size": args.batch_size,
              "eval_batch_size": args.eval_batch_size, "layers": args.layers, "backbone": config.backbone}
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
