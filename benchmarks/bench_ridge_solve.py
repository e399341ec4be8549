"""The closed-form readouts' solves: a float64 factorisation against a float32 one refined.

Two ridge systems as ``growing_pool`` solves them when an experience ends (its routing and
prompted readouts, side by side, one thread each): ``--samples`` unit-normalised inputs
with a shared mean direction (sentence features are far from isotropic), ``--dim`` random
ReLU features, ``--classes`` class sums. Each system is solved with the float64 Cholesky
factor alone and with the float32 factor refined to float64 accuracy (the default for
systems of ``MIXED_PRECISION_MIN_DIM`` or more); the median seconds of ``--repeats``,
the largest relative difference of the two solutions, and how many training rows' argmax
class differs, to ``--out``.

    .venv/bin/python benchmarks/bench_ridge_solve.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from provenance import provenance, write_json

from cl_prompts.methods import spd_solve
from cl_prompts.methods.closed_form import RidgeStatistics


def build(args, seed: int) -> tuple[RidgeStatistics, torch.Tensor]:
    """Statistics of ``args.samples`` inputs, and their random features (N, M) for the argmax check."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(args.samples, args.width, generator=gen) + 2.0 * torch.randn(1, args.width, generator=gen)
    targets = torch.randint(0, args.classes, (args.samples,), generator=gen)
    stats = RidgeStatistics(args.width, args.classes, args.dim, seed=seed)
    for start in range(0, args.samples, 1024):
        stats.add(x[start:start + 1024], targets[start:start + 1024])
    return stats, stats.expand(x)


def timed_solves(systems, min_dim: int, repeats: int) -> tuple[float, list[torch.Tensor]]:
    spd_solve.MIXED_PRECISION_MIN_DIM = min_dim
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = spd_solve.solve_spd_all(systems)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dim", type=int, default=10_000, help="random features (growing_pool's projection_dim)")
    p.add_argument("--samples", type=int, default=15_000, help="rows added (CLINC150's training set)")
    p.add_argument("--width", type=int, default=1536, help="input width (4 layers of MiniLM-L6)")
    p.add_argument("--classes", type=int, default=150)
    p.add_argument("--ridge", type=float, default=100.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/ridge_solve.json")
    args = p.parse_args(argv)
    pairs = [build(args, seed) for seed in (0, 1)]
    systems = [stats.system(args.ridge) for stats, _ in pairs]
    default_min = spd_solve.MIXED_PRECISION_MIN_DIM
    float64_s, exact = timed_solves(systems, 10**12, args.repeats)
    mixed_s, mixed = timed_solves(systems, default_min, args.repeats)
    spd_solve.MIXED_PRECISION_MIN_DIM = default_min
    rel = [float((m - e).norm() / e.norm()) for m, e in zip(mixed, exact, strict=True)]
    argmax_diff = [int(((h.float() @ m.float()).argmax(1) != (h.float() @ e.float()).argmax(1)).sum())
                   for (_, h), m, e in zip(pairs, mixed, exact, strict=True)]
    doc = {**provenance("bench_ridge_solve", argv), "dim": args.dim, "samples": args.samples,
           "width": args.width, "classes": args.classes, "ridge": args.ridge, "systems": len(systems),
           "repeats": args.repeats, "torch_threads": torch.get_num_threads(),
           "seconds": {"float64_factor": round(float64_s, 2), "float32_factor_refined": round(mixed_s, 2)},
           "relative_difference": rel, "training_rows_with_another_argmax": argmax_diff}
    write_json(args.out, doc)
    print(f"float64: {float64_s:.2f} s, float32 refined: {mixed_s:.2f} s; relative difference {max(rel):.1e}, "
          f"argmax differs on {sum(argmax_diff)} of {len(pairs) * args.samples} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
