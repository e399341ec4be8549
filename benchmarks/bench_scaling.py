"""Data-parallel scaling of the runner on this machine: the same run on 1 and on N processes.

Each run is ``torchrun --standalone --nproc-per-node P -m cl_prompts.cli run ...`` (gloo on
CPU, one torch thread per process, so P processes use P cores) with the same global batch;
training samples/s come from the run's own ``results.json`` (``train_samples`` /
``train_seconds``: every experience's training and its ``end_experience``), evaluation
samples/s from ``eval_seconds``. Speed-up = samples/s on P / on 1; efficiency = speed-up / P.

Systems:
- ``tiny``: the 2-layer width-32 test BERT on a synthetic CSV stream (communication-bound);
- ``minilm``: MiniLM-L6 on CLINC150 ``--quick`` (10 sentences per intent, 10 experiences).

Runs are interleaved ``--repeats`` times (this machine's timings vary run to run); the
medians are reported.

    .venv/bin/python benchmarks/bench_scaling.py                    # tiny and minilm, 1 and 2 processes
    .venv/bin/python benchmarks/bench_scaling.py --systems tiny --procs 1 2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from provenance import provenance, write_json

from cl_prompts.data import synthetic_text_dataset, write_text_csv

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = ("tiny", "minilm")


def tiny_csv(folder: Path) -> Path:
    ds = synthetic_text_dataset(num_classes=12, num_experiences=4, train_per_class=64, test_per_class=16)
    return write_text_csv(folder / "tiny.csv", [ds.train, ds.test], ds.class_names, overwrite=True)


def run_args(system: str, method: str, out: Path, folder: Path, data_root: str | None,
             backbone: str = "minilm") -> list[str]:
    common = ["--method", method, "--out", str(out), "--overwrite", "--no-progress", "--no-plots",
              "--eval-final-only"]
    if system == "tiny":
        return ["run", "--benchmark", f"file:{tiny_csv(folder)}", "--backbone", "tiny-bert", "--experiences", "4",
                "--epochs", "3", "--batch-size", "32", *common,
                *(["--set", "projection_dim=256"] if method == "growing_pool" else [])]
    root = ["--data-root", data_root] if data_root else []
    return ["run", "--benchmark", "clinc150", "--quick", "--backbone", backbone, *root, *common]


def timed_run(procs: int, args: list[str]) -> dict[str, float]:
    """One run on ``procs`` processes; its training and evaluation samples/s."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}",
           "-m", "cl_prompts.cli", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    r = json.loads((Path(args[args.index("--out") + 1]) / "results.json").read_text())
    return {"train_samples_per_s": r["train_samples"] / r["train_seconds"], "train_seconds": r["train_seconds"],
            "eval_seconds": r["eval_seconds"], "final_average_accuracy": r["final_average_accuracy"],
            "world_sizes": r["world_sizes"]}


def main(argv=None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    p.add_argument("--procs", nargs="+", type=int, default=[1, 2])
    p.add_argument("--method", default="growing_pool")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--data-root", help="folder with clinc150/ (default: $CL_PROMPTS_DATA or ../shared/data)")
    p.add_argument("--backbone", default="minilm", help="the minilm system's backbone (a hub id or a local folder)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling.json"))
    args = p.parse_args(argv)
    doc: dict[str, Any] = {**provenance("bench_scaling", argv), "cpu_count": os.cpu_count(), "method": args.method,
                           "systems": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for system in args.systems:
            trials: dict[int, list[dict[str, float]]] = {n: [] for n in args.procs}
            for rep in range(args.repeats):
                for n in args.procs:  # interleaved: a slow spell hits every process count alike
                    out = folder / f"{system}-{n}-{rep}"
                    trials[n].append(timed_run(n, run_args(system, args.method, out, folder, args.data_root, args.backbone)))
                    print(f"[scaling] {system} {n} proc(s), repeat {rep}: "
                          f"{trials[n][-1]['train_samples_per_s']:.1f} train samples/s", flush=True)
            rows = {}
            for n in args.procs:
                speed = statistics.median(t["train_samples_per_s"] for t in trials[n])
                rows[n] = {"train_samples_per_s": round(speed, 2),
                           "final_average_accuracy": [round(t["final_average_accuracy"], 2) for t in trials[n]],
                           "runs": trials[n]}
            base = rows[min(args.procs)]["train_samples_per_s"] * min(args.procs)
            for n in args.procs:
                rows[n]["speedup"] = round(rows[n]["train_samples_per_s"] * min(args.procs) / base, 3)
                rows[n]["efficiency"] = round(rows[n]["speedup"] / n, 3)
            doc["systems"][system] = rows
    print(f"\n| system | processes | train samples/s (median of {args.repeats}) | speed-up | efficiency | final acc (each run) |")
    print("|---|---|---|---|---|---|")
    for system, rows in doc["systems"].items():
        for n, r in rows.items():
            print(f"| {system} | {n} | {r['train_samples_per_s']} | {r['speedup']} | {r['efficiency']} | "
                  f"{r['final_average_accuracy']} |")
    write_json(args.out, doc)
    print(f"written: {args.out}")
    return doc


if __name__ == "__main__":
    main()
