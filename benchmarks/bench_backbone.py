"""Training throughput of one prompt-tuning step, with and without the query cache.

The step is L2P's: frozen query pass -> pool selection -> prompted forward ->
head + key-matching loss -> backward -> Adam on the prompts, keys and head. With the
cache the query pass of a sample already seen (every epoch after the first) is a
lookup; without it the frozen model runs twice per step.

Models:
- text: MiniLM-L6 (the offline default) on CLINC150 train utterances (max_length 64,
  all-padding columns trimmed by the backbone);
- vision: a ViT-Base-sized random ViT (768 wide, 12 layers, 224 px, patch 16) on fixed
  random images (cache explicitly enabled: un-augmented inputs).

Modes: ``uncached``; ``cached`` (keys = sample content, what ``query_features(x)``
does by default); ``cached_index_keys`` (keys = explicit sample indices). Protocol per
model and mode: warm the cache over the whole sample set (cache modes only; that is
epoch 1's extra cost, reported as cache_fill_seconds), one untimed warm-up step, then
time one epoch over the same samples.

    .venv/bin/python benchmarks/bench_backbone.py                       # both, this CPU
    .venv/bin/python benchmarks/bench_backbone.py --skip-vit --text-steps 10
    # on a machine without the MiniLM weights or faiss (throughput does not depend on weights):
    python benchmarks/bench_backbone.py --device cuda --random-text --index torch \
        --text-steps 40 --vit-steps 10 --out benchmarks/results/backbone_cuda.json
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from provenance import provenance, write_json

from cl_prompts.backbones import BackboneConfig, PromptedBackbone, default_backbone, to_device
from cl_prompts.pool import PoolConfig, PromptPool

ROOT = Path(__file__).resolve().parents[1]
PROMPT_LENGTH, POOL_SIZE, TOP_K = 5, 10, 5
NUM_CLASSES = 15  # one CLINC150 experience
INDEX = "flat"  # the pool's default (faiss); --index torch where faiss is missing


def vit_base_random(device: str) -> PromptedBackbone:
    """ViT-Base geometry, random weights (no pretrained ViT is available offline)."""
    from transformers import AutoModel, ViTConfig

    from cl_prompts.backbones.config import FAMILIES
    from cl_prompts.backbones.loading import model_kwargs

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = AutoModel.from_config(ViTConfig(), **model_kwargs(FAMILIES["vit"]))
    cfg = BackboneConfig(name_or_path="vit-base-random", pooling="cls", query_cache_vision=True)
    return PromptedBackbone(model, cfg).to(device)


def text_batches(bb: PromptedBackbone, steps: int, batch: int, seed: int) -> list[dict]:
    from cl_prompts.data import load_clinc150

    texts = load_clinc150().train.texts
    picked = random.Random(seed).sample(texts, steps * batch)
    enc = bb.tokenize(picked)
    return [{k: v[i : i + batch] for k, v in enc.items()} for i in range(0, steps * batch, batch)]


def image_batches(steps: int, batch: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, 224, 224, generator=gen) for _ in range(steps)]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def minilm_random(device: str) -> PromptedBackbone:
    """MiniLM-L6 geometry and tokenizer, random weights: for machines without the weights
    (throughput does not depend on the weight values)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from cl_prompts.backbones.config import FAMILIES
    from cl_prompts.backbones.loading import minilm_path, model_kwargs

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = AutoModel.from_config(AutoConfig.from_pretrained(minilm_path()), **model_kwargs(FAMILIES["bert"]))
    cfg = BackboneConfig(name_or_path="minilm-random", pooling="mean")
    return PromptedBackbone(model, cfg, AutoTokenizer.from_pretrained(minilm_path())).to(device)


def run_mode(bb: PromptedBackbone, batches: list, use_cache: bool, device: str, seed: int, keys: str) -> dict:
    """Time one epoch of prompt-tuning steps over ``batches``; returns samples/s and timings.

    keys: "content" (the default of ``query_features``: hash of the token ids / pixels) or
    "index" (explicit sample indices, what a dataset that knows them passes).
    """
    torch.manual_seed(seed)
    bb.clear_query_cache()
    pool_cfg = PoolConfig(embed_dim=bb.hidden_size, prompt_length=PROMPT_LENGTH, top_k=TOP_K, index=INDEX)
    pool = PromptPool(pool_cfg).to(device)
    pool.add_task(num_prompts=POOL_SIZE)
    head = torch.nn.Linear(bb.hidden_size, NUM_CLASSES).to(device)
    opt = torch.optim.Adam(pool.trainable_parameters() + list(head.parameters()), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    targets = [torch.randint(0, NUM_CLASSES, (len(b["input_ids"] if isinstance(b, dict) else b),), generator=gen)
               for b in batches]
    batches = [to_device(b, device) for b in batches]
    targets = [t.to(device) for t in targets]
    offsets = torch.cumsum(torch.tensor([0] + [len(t) for t in targets]), 0).tolist()
    indices = [torch.arange(offsets[i], offsets[i + 1]) if keys == "index" else None for i in range(len(batches))]

    def step(x, y, idx):
        q = bb.query_features(x, indices=idx, use_cache=use_cache)  # (B, D) frozen
        sel = pool.select(q)
        out = bb(x, input_prompts=sel.prompts)  # (B, P + T, D)
        loss = F.cross_entropy(head(out.prompt_pooled), y) + 0.1 * pool.key_matching_loss(sel)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    fill = 0.0
    if use_cache:  # epoch 1's extra work: one frozen pass per sample
        sync(device)
        t0 = time.perf_counter()
        for x, idx in zip(batches, indices, strict=True):
            bb.query_features(x, indices=idx, use_cache=True)
        sync(device)
        fill = time.perf_counter() - t0
    step(batches[0], targets[0], indices[0])  # warm-up (allocator, kernels); not timed
    sync(device)
    t0 = time.perf_counter()
    losses = [step(x, y, i) for x, y, i in zip(batches, targets, indices, strict=True)]
    sync(device)
    seconds = time.perf_counter() - t0
    n = sum(len(y) for y in targets)
    return {
        "use_cache": use_cache,
        "cache_keys": keys if use_cache else None,
        "steps": len(batches),
        "samples": n,
        "epoch_seconds": round(seconds, 3),
        "train_samples_per_second": round(n / seconds, 2),
        "cache_fill_seconds": round(fill, 3),
        "cache_info": bb.query_cache_info(),
        "final_loss": round(losses[-1], 4),
    }


def query_pass_trim(bb: PromptedBackbone, batches: list[dict], device: str) -> dict:
    """Frozen query pass samples/s: padded to max_length (raw HF model) vs trimmed (backbone)."""
    batches = [to_device(b, device) for b in batches]
    out = {}
    with torch.no_grad():
        for name, fn in (
            ("padded_to_max_length", lambda x: bb.model(**x).last_hidden_state),
            ("trimmed", lambda x: bb.query_features(x, use_cache=False)),
        ):
            fn(batches[0])
            sync(device)
            t0 = time.perf_counter()
            for x in batches:
                fn(x)
            sync(device)
            out[name] = round(sum(len(x["input_ids"]) for x in batches) / (time.perf_counter() - t0), 1)
    return out


def bench(name: str, bb: PromptedBackbone, batches: list, device: str, seed: int) -> dict:
    print(f"[{name}] {bb.identity()}", flush=True)
    modes = {}
    plan = [("uncached", False, "content"), ("cached", True, "content"), ("cached_index_keys", True, "index")]
    for mode, use_cache, keys in plan:
        modes[mode] = r = run_mode(bb, batches, use_cache, device, seed, keys)
        print(f"[{name}] {mode}: {r['train_samples_per_second']} samples/s", flush=True)
    result = {
        "backbone": bb.identity(),
        "batch_size": len(batches[0]["input_ids"] if isinstance(batches[0], dict) else batches[0]),
        "modes": modes,
        "cache_speedup": {
            m: round(modes[m]["train_samples_per_second"] / modes["uncached"]["train_samples_per_second"], 3)
            for m in ("cached", "cached_index_keys")
        },
    }
    if bb.modality == "text":
        result["max_length"] = bb.config.max_length
        result["mean_real_tokens"] = round(float(torch.cat([b["attention_mask"].sum(1) for b in batches]).float().mean()), 2)
        result["query_pass_samples_per_second"] = query_pass_trim(bb, batches, device)
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--text-steps", type=int, default=20, help="timed steps (= batches per epoch), MiniLM")
    ap.add_argument("--vit-steps", type=int, default=2, help="timed steps (= batches per epoch), ViT-Base")
    ap.add_argument("--skip-vit", action="store_true")
    ap.add_argument("--skip-text", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", default="flat", help="pool key index: flat (faiss) or torch")
    ap.add_argument("--random-text", action="store_true", help="MiniLM geometry with random weights")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "backbone.json"))
    args = ap.parse_args(argv)
    global INDEX
    INDEX = args.index

    results: dict = {
        "benchmark": "backbone_prompt_tuning_step",
        **provenance("bench_backbone", argv, device=args.device),
        "step": f"L2P step: query -> pool select (size {POOL_SIZE}, top-{TOP_K}, length {PROMPT_LENGTH}) "
        "-> prompted forward -> CE + 0.1 key loss -> backward -> Adam",
        "device": args.device if not args.device.startswith("cuda") else torch.cuda.get_device_name(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "results": {},
    }
    if not args.skip_text:
        bb = minilm_random(args.device) if args.random_text else default_backbone().to(args.device)
        batches = text_batches(bb, args.text_steps, args.batch, args.seed)
        results["results"]["minilm_clinc150"] = bench("minilm", bb, batches, args.device, args.seed)
        del bb
    if not args.skip_vit:
        bb = vit_base_random(args.device)
        batches = image_batches(args.vit_steps, args.batch, args.seed)
        results["results"]["vit_base_random"] = bench("vit-base", bb, batches, args.device, args.seed)
    out = write_json(args.out, results, indent=2)
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
