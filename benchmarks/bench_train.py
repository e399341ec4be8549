"""Training speed of our ``l2p`` side by side with Avalanche's ``LearningToPrompt``, and the floor.

Three systems (``train_speed_systems.py``) train L2P on the same synthetic images (one
experience, fixed data, no augmentation), with the same geometry (ViT-Base width, 12
layers, 224 px; pool 10, prompt length 5, top-k 5; the same batch size, Adam, lr 0.03),
random weights on both sides (nothing is downloaded):

- peer: ``avalanche.training.supervised.LearningToPrompt`` (timm ViT; ``pip install
  'cl_prompts[bench]'`` pins the timm it builds with, 0.6.13); fp32, as it ships.
- ours: ``build_model("l2p", ...)`` on a transformers ViT inside our ``PromptStrategy``
  (the same Avalanche loop and data loader as the peer), at each ``--precisions``;
  vision query cache on (the images are not augmented), so epochs after the first skip
  the frozen query pass.
- floor: the prompted backbone alone with fixed prompts: forward, backward, Adam on the
  prompts and a linear head; no query pass, no selection, batches already on the device.
  ``floor_two_pass`` adds an uncached query pass per step (what a method without a cache
  cannot avoid).

Each system runs in a process of its own (peak memory is per process: max RSS on CPU,
``max_memory_allocated`` on CUDA). Reported: samples/s of the first epoch, of the later
epochs, of all ``--epochs`` epochs, and of evaluation (new images, per-sample selection);
ratios ours/peer and ours/floor.

    .venv/bin/python benchmarks/bench_train.py --quick          # ViT-B/32, a few minutes on a CPU
    .venv/bin/python benchmarks/bench_train.py                  # ViT-B/16, 32 images, batch 16
    python benchmarks/bench_train.py --device cuda --images 512 --batch-size 64 \\
        --out benchmarks/results/train_speed_cuda.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from provenance import provenance, write_json
from train_speed_systems import CLASSES, LENGTH, LR, POOL, SYSTEMS, TOP_K

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ("first_epoch_samples_per_s", "later_epochs_samples_per_s", "train_samples_per_s", "eval_samples_per_s")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="ViT-B/32 instead of B/16 (4x fewer tokens)")
    p.add_argument("--patch", type=int, default=None, help="ViT patch size: 16 (default) or 32")
    p.add_argument("--tiny", action="store_true", help="a 2-layer width-32 ViT (tests; no peer)")
    p.add_argument("--images", type=int, default=32, help="training images (the eval set has as many)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], help="ours and the floor run in each")
    p.add_argument("--repeats", type=int, default=1,
                   help="run every system this many times, interleaved; rows hold the medians")
    p.add_argument("--no-peer", dest="peer", action="store_false", help="skip Avalanche's LearningToPrompt")
    p.add_argument("--index", default=None, help="our pool's key index (default: the pool's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    p.add_argument("--profile", action="store_true",
                   help="instead of timing: our timed training and evaluation under cProfile, the 30 costliest "
                        "calls per precision "
                        "(written next to --out as .profile.txt)")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/train_speed.json"))
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one system, print its JSON
    args = p.parse_args(argv)
    args.patch = args.patch or (32 if args.quick else 16)
    return args


# ------------------------------------------------------------------ the worker side
def worker(args) -> None:
    import torch

    from cl_prompts.results.record import peak_memory_mb

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    system, precision = args.worker.split(":")
    torch.manual_seed(0)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    if args.profile:
        import cProfile
        import io
        import pstats

        args.profiler = cProfile.Profile()
        row = SYSTEMS[system](args, precision)
        text = io.StringIO()
        pstats.Stats(args.profiler, stream=text).sort_stats("tottime").print_stats(30)
        row["profile"] = text.getvalue()
    else:
        row = SYSTEMS[system](args, precision)
    row["peak_memory_mb"], row["memory_source"] = peak_memory_mb(args.device)
    print("RESULT " + json.dumps(row))


# ------------------------------------------------------------------ the driver side
def measure(args, argv: list[str], system: str, precision: str) -> dict:
    cmd = [sys.executable, __file__, *argv, "--worker", f"{system}:{precision}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{system} ({precision}) failed:\n{proc.stderr[-3000:]}")
    row = json.loads(lines[-1][len("RESULT "):])
    n, e = args.images, row["epoch_seconds"]
    row.update(system=system, precision=precision,
               first_epoch_samples_per_s=n / e[0],
               later_epochs_samples_per_s=n * (len(e) - 1) / sum(e[1:]) if len(e) > 1 else None,
               train_samples_per_s=n * len(e) / sum(e),
               eval_samples_per_s=n / row["eval_seconds"])
    return row


def median_row(tries: list[dict]) -> dict:
    """One row of several repeats: the median of each figure, and every repeat's value beside it."""
    row = dict(tries[-1])
    if len(tries) > 1:
        for key in FIGURES + ("peak_memory_mb",):
            values = [t[key] for t in tries]
            if None in values:  # one epoch: no later epochs
                continue
            row[key], row[key + "_each"] = statistics.median(values), values
    return row


def ratios(rows: list[dict]) -> dict:
    """ours / peer and ours / floor, per precision, for each figure."""
    by = {(r["system"], r["precision"]): r for r in rows}
    keys = FIGURES
    out = {}
    for (system, precision), r in by.items():
        if system != "ours":
            continue
        for other in ("peer", "floor"):
            ref = by.get((other, "fp32" if other == "peer" else precision))
            if ref is not None:
                out[f"ours_{precision}_over_{other}"] = {k: r[k] / ref[k] for k in keys if r[k] and ref[k]}
    return out


def profile(args, argv: list[str]) -> dict:
    """Our training and evaluation under cProfile, one process per precision; the tables to a text file."""
    tables = {p: measure(args, argv, "ours", p)["profile"] for p in args.precisions}
    path = Path(args.out).with_suffix(".profile.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"== ours, {p}: python benchmarks/bench_train.py {' '.join(argv)}\n{t}\n"
                            for p, t in tables.items()))
    print(path.read_text() + f"written: {path}")
    return tables


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    if args.profile:
        return profile(args, argv)
    jobs = [("peer", "fp32")] if args.peer and not args.tiny else []
    jobs += [(s, p) for p in args.precisions for s in ("ours", "floor")] + [("floor_two_pass", "fp32")]
    tries: dict[tuple[str, str], list[dict]] = {job: [] for job in jobs}
    for _ in range(args.repeats):  # interleaved: a slow spell of a shared machine hits every system
        for system, precision in jobs:
            tries[(system, precision)].append(measure(args, argv, system, precision))
            r = tries[(system, precision)][-1]
            later = r["later_epochs_samples_per_s"]
            print(f"{system:15s} {precision:5s} train {r['train_samples_per_s']:7.2f}/s (first epoch "
                  f"{r['first_epoch_samples_per_s']:.2f}, later {later or float('nan'):.2f})  eval "
                  f"{r['eval_samples_per_s']:7.2f}/s  peak {r['peak_memory_mb']:.0f} MB", flush=True)
    rows = [median_row(t) for t in tries.values()]
    import torch

    result = {
        **provenance("bench_train", argv, device=args.device), "device": args.device, "torch": torch.__version__,
        "threads": args.threads or os.cpu_count(),
        "setting": {"vit": "tiny" if args.tiny else f"ViT-B/{args.patch}", "images": args.images, "repeats": args.repeats,
                    "batch_size": args.batch_size, "epochs": args.epochs, "pool": POOL, "prompt_length": LENGTH,
                    "top_k": TOP_K, "lr": LR, "classes": CLASSES},
        "rows": rows, "ratios": ratios(rows),
    }
    for name, r in result["ratios"].items():
        print(f"{name:24s} " + "  ".join(f"{k.replace('_samples_per_s', '')} {v:.2f}x" for k, v in r.items()))
    write_json(args.out, result, indent=2)
    print(f"written: {args.out}")
    return result


if __name__ == "__main__":
    main()
