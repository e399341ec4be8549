"""What thread-count-independent math costs: one prompted training step of the backbone.

    python benchmarks/bench_determinism.py [--backbone minilm] [--threads 1 2] [--steps 15]

For each thread count, two child processes time the same step (forward + backward of a
batch of 32 CLINC150-like sentences through a 32-token prompt looked up from a pool, as
``growing_pool`` trains): one with MKL's default kernels, one with ``MKL_CBWR=AUTO,STRICT``
(what the runner sets, docs/reproducibility.md). Each process prints the median of
``--steps`` steps after 3 warm-up steps; the script also checks that the strict setting
gives the same gradient bits with every thread count. Writes
``benchmarks/results/determinism.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from provenance import provenance, write_json

CHILD = r"""
import hashlib, json, statistics, sys, time
import torch
from cl_prompts.backbones import BackboneConfig, load_backbone
from cl_prompts.pool import PoolConfig, PromptPool

backbone_name, steps = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
backbone = load_backbone(BackboneConfig(name_or_path=backbone_name, max_length=16))
texts = [f"please book a table for {i} people at seven tonight near the station" for i in range(32)]
inputs = backbone.tokenize(texts)
pool = PromptPool(PoolConfig(embed_dim=backbone.hidden_size, prompt_length=32, top_k=1, index="torch"))
pool.add_task(num_prompts=1)
ids = torch.zeros(32, 1, dtype=torch.long)
head = torch.randn(backbone.hidden_size, 15, generator=torch.Generator().manual_seed(1))
targets = torch.arange(32) % 15

def step():
    prompts, _ = pool.lookup(ids)  # (32, 1, 32, D)
    out = backbone(inputs, input_prompts=prompts.flatten(1, 2))
    loss = torch.nn.functional.cross_entropy(out.pooled @ head, targets)
    pool.prompts.grad = None
    loss.backward()

for _ in range(3):
    step()
times = []
for _ in range(steps):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
digest = hashlib.sha256(pool.prompts.grad.numpy().tobytes()).hexdigest()[:16]
print(json.dumps({"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times), "grad_sha": digest}))
"""


def measure(backbone: str, threads: int, strict: bool, steps: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop("MKL_CBWR", None)
    if strict:
        env["MKL_CBWR"] = "AUTO,STRICT"
    done = subprocess.run([sys.executable, "-c", CHILD, backbone, str(steps)], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--out", default="benchmarks/results/determinism.json")
    args = p.parse_args(argv)
    rows = []
    for threads in args.threads:
        for strict in (False, True):
            r = measure(args.backbone, threads, strict, args.steps)
            rows.append({"threads": threads, "mkl_cbwr": "AUTO,STRICT" if strict else "default", **r})
            print(f"threads {threads}  MKL_CBWR {rows[-1]['mkl_cbwr']:12s}  median {r['median_ms']:7.1f} ms"
                  f"  min {r['min_ms']:7.1f} ms  grad {r['grad_sha']}", flush=True)
    strict_grads = {r["grad_sha"] for r in rows if r["mkl_cbwr"] != "default"}
    doc = {"backbone": args.backbone, "steps": args.steps, "rows": rows,
           "strict_same_bits_across_threads": len(strict_grads) == 1,
           **provenance("bench_determinism", argv)}
    print(f"strict setting gives the same gradient with every thread count: {doc['strict_same_bits_across_threads']}")
    write_json(args.out, doc)
    return doc


if __name__ == "__main__":
    main()
