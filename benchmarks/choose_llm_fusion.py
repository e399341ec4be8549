"""The default ``candidates`` and ``route_weight`` of ``growing_pool`` on a causal LM, from
several validation grids of ``explore_llm_fusion.py``.

    python benchmarks/choose_llm_fusion.py \\
        benchmarks/results/llm-hwu64-fs20/val/fusion-minilm-rank1-e3.json \\
        benchmarks/results/llm-clinc150-fs20/val/fusion-minilm-rank1-e1.json \\
        benchmarks/results/llm-hwu64-full/val/fusion-minilm.json \\
        --out benchmarks/results/llm-fusion-defaults.json

Each grid holds the validation accuracy of every (candidates, route_weight) pair of one
trained model (the test data is never read). A pair is scored by its mean over the grids;
the best wins (ties: fewer candidates, then the smaller weight). A grid that scores other
pairs than the first is refused, naming it.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from provenance import provenance, write_json


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grids", type=Path, nargs="+", help="--out files of explore_llm_fusion.py")
    p.add_argument("--out", type=Path, required=True)
    return p.parse_args(argv)


def pairs_of(path: Path) -> dict[tuple[int, float], float]:
    """(candidates, route_weight) -> validation accuracy (%) of one grid."""
    grid = json.loads(path.read_text())["grid"]
    return {(int(g["candidates"]), float(g["route_weight"])): float(g["val_accuracy"]) for g in grid}


def choose(grids: dict[str, dict[tuple[int, float], float]]) -> tuple[list[dict], dict]:
    """Every pair's mean over the grids, and the best pair."""
    first, *_ = grids.values()
    shared = set(first)
    for name, g in grids.items():
        if set(g) != shared:
            raise SystemExit(f"{name} scores other pairs than the first grid: {sorted(set(g) ^ shared)}")
    rows = [{"candidates": m, "route_weight": str(w) if math.isinf(w) else w,
             "per_grid": {name: g[(m, w)] for name, g in grids.items()},
             "mean_val_accuracy": sum(g[(m, w)] for g in grids.values()) / len(grids)}
            for m, w in sorted(shared)]
    best = max(rows, key=lambda r: (round(r["mean_val_accuracy"], 6), -r["candidates"], -float(r["route_weight"])))
    return rows, best


def main(argv=None) -> Path:
    args = parse_args(argv)
    rows, best = choose({str(p): pairs_of(p) for p in args.grids})
    write_json(args.out, {**provenance("choose_llm_fusion", argv), "pairs": rows,
                          "chosen": {k: best[k] for k in ("candidates", "route_weight", "mean_val_accuracy")}})
    for r in rows:
        print(f"candidates {r['candidates']}  route_weight {r['route_weight']:>5}  mean val {r['mean_val_accuracy']:.2f}")
    print(f"chosen: candidates {best['candidates']}, route_weight {best['route_weight']}: {args.out}")
    return args.out


if __name__ == "__main__":
    main()
