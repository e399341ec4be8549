"""Selection latency and recall@k of the pool's key indexes.

Pool sizes 10 .. 100k, batch 256, widths 384 and 768, top-5, for: a bare torch
matmul + topk, the pool's default ``"flat"`` KeyIndex, torch-exact (``"torch"``),
faiss flat (``IndexFlatIP``), HNSW32 (several efSearch) and IVF (several nprobe).

Keys look like learned keys (they sit near clusters of query features): MiniLM-L6
sentence embeddings (mean pooling) of CLINC150 train utterances; for pool sizes beyond
the data, a mixture of Gaussians around those embeddings. Queries are embeddings of
CLINC150 test utterances. Width 768 maps the 384-wide embeddings into 768 dimensions
with a random orthogonal embedding plus small isotropic noise (no 768-wide model is
available offline; inner-product structure is kept). Uniform random keys on the sphere
are reported separately as the worst case for approximate indexes.

    .venv/bin/python benchmarks/bench_selection.py                # full run (~10 min, 2 cores)
    .venv/bin/python benchmarks/bench_selection.py --sizes 10 100 1000 --widths 384
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from provenance import provenance, write_json

from cl_prompts.index import KeyIndex

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench_selection"
BATCH, K = 256, 5
NOISE = 0.25  # norm of the Gaussian offset around an embedding (unit-norm keys)


# ------------------------------------------------------------------ data
def clinc_embeddings() -> tuple[torch.Tensor, torch.Tensor]:
    """(N_train, 384), (N_test, 384) MiniLM embeddings, cached as safetensors under .cache/."""
    from safetensors.torch import load_file, save_file

    file = CACHE / "minilm_clinc150.safetensors"
    if file.is_file():
        t = load_file(file)
        return t["train"], t["test"]
    from cl_prompts.backbones import default_backbone
    from cl_prompts.data import load_clinc150

    ds = load_clinc150()
    bb = default_backbone()
    out = {}
    for split, texts in (("train", ds.train.texts), ("test", ds.test.texts)):
        feats = []
        for i in range(0, len(texts), 512):
            inputs = bb.tokenize(texts[i : i + 512])
            feats.append(bb.query_features(inputs, use_cache=False).float())
            print(f"  embedding {split}: {i + len(inputs['input_ids'])}/{len(texts)}", end="\r")
        out[split] = torch.cat(feats).contiguous()
    print()
    CACHE.mkdir(parents=True, exist_ok=True)
    save_file(out, str(file))
    return out["train"], out["test"]


def widen(x: torch.Tensor, width: int, gen: torch.Generator) -> torch.Tensor:
    """Map (N, 384) rows into ``width`` dims by a fixed random orthogonal embedding."""
    if x.shape[1] == width:
        return x
    q, _ = torch.linalg.qr(torch.randn(width, x.shape[1], generator=gen))  # (width, 384)
    y = x @ q.T
    return y + torch.randn(y.shape, generator=gen) * (0.05 / math.sqrt(width)) * y.norm(dim=1, keepdim=True)


def make_keys(kind: str, n: int, base: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(n, D) unit-norm keys: "real" (embeddings, then a Gaussian mixture) or "uniform"."""
    d = base.shape[1]
    if kind == "uniform":
        return F.normalize(torch.randn(n, d, generator=gen), dim=1)
    base = F.normalize(base, dim=1)
    if n <= base.shape[0]:
        return base[torch.randperm(base.shape[0], generator=gen)[:n]].clone()
    centres = base[torch.randint(0, base.shape[0], (n,), generator=gen)]
    noise = torch.randn(n, d, generator=gen) * (NOISE / math.sqrt(d))
    return F.normalize(centres + noise, dim=1)


# ------------------------------------------------------------------ timing
def time_ms(fn, repeats: int) -> tuple[float, float]:
    """(median, min) wall time in ms; the min shows what a shared, busy CPU hides."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3


def recall(found: torch.Tensor, truth: torch.Tensor) -> float:
    f, t = found.tolist(), truth.tolist()
    return sum(len(set(a) & set(b)) for a, b in zip(f, t, strict=True)) / truth.numel()


def nlist_for(n: int) -> int:
    return max(4, min(4096, int(4 * math.sqrt(n))))  # faiss' usual 4*sqrt(N)


def bench_one(keys: torch.Tensor, queries: torch.Tensor, repeats: int, quick_ann: bool) -> list[dict]:
    n, d = keys.shape
    ids = torch.arange(n)
    rows = []
    t_keys = keys.contiguous()

    def bare():
        return torch.topk(queries @ t_keys.T, min(K, n), dim=1)

    truth = bare().indices
    med, low = time_ms(bare, repeats)
    rows.append({"method": "torch matmul+topk (bare)", "ms": med, "min_ms": low, "recall": 1.0})
    configs = [("flat (default: faiss IndexFlatIP)", "flat", {}, [None]), ("torch-exact", "torch", {}, [None])]
    if n >= 1000:
        configs.append(("HNSW32", "HNSW32", {}, [16, 32, 64, 128, 256] if not quick_ann else [32, 128]))
        nl = nlist_for(n)
        configs.append((f"IVF{nl},Flat", f"IVF{nl},Flat", {}, [4, 16, 64] if not quick_ann else [16]))
    for label, spec, kw, knobs in configs:
        idx = KeyIndex(d, spec, **kw)
        t0 = time.perf_counter()
        idx.add(keys, ids)
        if idx.backend == "faiss" and idx._faiss is None:
            idx.search(queries[:1], 1)  # flat-faiss builds lazily
        build_s = time.perf_counter() - t0
        for knob in knobs:
            name = label
            if spec.startswith("HNSW"):
                idx.ef_search, name = knob, f"{label} ef{knob}"
            elif spec.startswith("IVF"):
                idx.nprobe, name = knob, f"{label} nprobe{knob}"
            found = idx.search(queries, min(K, n))[1]
            med, low = time_ms(lambda idx=idx: idx.search(queries, min(K, n)), repeats)
            rows.append({"method": name, "ms": med, "min_ms": low, "recall": recall(found, truth),
                         "build_s": build_s})
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000, 100000])
    ap.add_argument("--widths", type=int, nargs="+", default=[384, 768])
    ap.add_argument("--keys", nargs="+", default=["real", "uniform"], choices=["real", "uniform"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "selection.json"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=30, help="timed runs for pools <= 1k (fewer above)")
    args = ap.parse_args(argv)
    import faiss

    train, test = clinc_embeddings()
    results = []
    for width in args.widths:
        gen = torch.Generator().manual_seed(args.seed)
        base = widen(train, width, gen)
        gen_q = torch.Generator().manual_seed(args.seed)
        queries = widen(test, width, gen_q)  # same embedding map: same seed
        queries = queries[torch.randperm(queries.shape[0], generator=gen)[:BATCH]].contiguous()
        for kind in args.keys:
            for n in args.sizes:
                keys = make_keys(kind, n, base, gen)
                repeats = args.repeats if n <= 1000 else max(5, args.repeats // (3 if n <= 10000 else 6))
                rows = bench_one(keys, queries, repeats, quick_ann=kind == "uniform")
                for r in rows:
                    r.update(width=width, keys=kind, size=n)
                    print(f"{width:5d} {kind:8s} {n:7d}  {r['method']:28s} {r['ms']:9.3f} ms  "
                          f"recall@{K} {r['recall']:.3f}", flush=True)
                results.extend(rows)
    goals = check_goals(results)
    prov = provenance("bench_selection", argv)
    report = {
        "benchmark": "selection",
        **prov,
        "batch": BATCH, "k": K, "noise": NOISE,
        "machine": {**prov["machine"], "faiss_threads": faiss.omp_get_max_threads()},
        "load_average_1min_at_end": os.getloadavg()[0],
        "rows": results, "goals": goals,
    }
    write_json(args.out, report)
    print(markdown_table(results))
    print(summary_table(results))
    print(json.dumps(goals, indent=1))
    return report


def check_goals(rows: list[dict]) -> dict:
    """The selection benchmark's two goals (docs/selection.md), evaluated on the rows measured (None when not measured)."""
    def ms(r, method):
        return next((x["ms"] for x in rows if x["method"] == method and
                     (x["width"], x["keys"], x["size"]) == r), None)

    out = {"ann_5x_at_100k_recall_0.95": [], "default_within_20pct_under_1k": []}
    cases = sorted({(x["width"], x["keys"], x["size"]) for x in rows})
    for case in cases:
        w, kind, n = case
        exact = ms(case, "torch-exact")
        if n >= 100000 and kind == "real":
            ann = [x for x in rows if (x["width"], x["keys"], x["size"]) == case
                   and x["recall"] >= 0.95 and (x["method"].startswith(("HNSW", "IVF")))]
            best = min(ann, key=lambda x: x["ms"], default=None)
            out["ann_5x_at_100k_recall_0.95"].append({
                "width": w, "best": best and best["method"], "recall": best and best["recall"],
                "speedup": best and exact / best["ms"], "met": bool(best and exact / best["ms"] >= 5)})
        if n <= 1000:
            ratio = ms(case, "flat (default)") / exact
            bare = ms(case, "flat (default)") / ms(case, "torch matmul+topk (bare)")
            out["default_within_20pct_under_1k"].append(
                {"width": w, "keys": kind, "size": n, "default_over_torch_exact": ratio,
                 "default_over_bare_matmul": bare, "met": ratio <= 1.2})
    return out


def markdown_table(rows: list[dict]) -> str:
    lines = ["| width | keys | pool size | method | median ms (B=256) | min ms | recall@5 |",
             "|---:|---|---:|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['width']} | {r['keys']} | {r['size']} | {r['method']} | "
                     f"{r['ms']:.2f} | {r['min_ms']:.2f} | {r['recall']:.3f} |")
    return "\n".join(lines)


def summary_table(rows: list[dict]) -> str:
    """One line per case: exact paths, and the fastest HNSW / IVF setting with recall >= 0.95."""
    lines = ["| width | keys | pool size | torch-exact ms | flat (default) ms | faiss flat ms "
             "| fastest HNSW32 @ recall>=0.95 | fastest IVF @ recall>=0.95 |",
             "|---:|---|---:|---:|---:|---:|---|---|"]
    cases = sorted({(x["width"], x["keys"], x["size"]) for x in rows}, key=lambda c: (c[1], c[0], c[2]))
    for case in cases:
        sub = [x for x in rows if (x["width"], x["keys"], x["size"]) == case]
        get = {x["method"]: x for x in sub}

        def best(prefix: str, sub: list[dict] = sub) -> str:
            ok = [x for x in sub if x["method"].startswith(prefix) and x["recall"] >= 0.95]
            if not ok:
                top = max((x for x in sub if x["method"].startswith(prefix)),
                          key=lambda x: x["recall"], default=None)
                return "-" if top is None else f"none (best recall {top['recall']:.3f})"
            b = min(ok, key=lambda x: x["ms"])
            return f"{b['method'].split(' ', 1)[-1]}: {b['ms']:.1f} ms, {b['recall']:.3f}"

        lines.append(f"| {case[0]} | {case[1]} | {case[2]} | {get['torch-exact']['ms']:.2f} | "
                     f"{get['flat (default)']['ms']:.2f} | {get['faiss flat']['ms']:.2f} | "
                     f"{best('HNSW')} | {best('IVF')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
