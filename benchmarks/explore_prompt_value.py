"""What are learned prompts worth to a closed-form readout? Validation data only.

    python benchmarks/explore_prompt_value.py --benchmark hwu64 --seeds 0 1 2 --epochs 1
    python benchmarks/explore_prompt_value.py --benchmark hwu64 --seeds 0 --epochs 1 3 --first-tasks 8
    python benchmarks/explore_prompt_value.py --benchmark hwu64 --seeds 0 --epochs 3 --first-tasks 8 --prompt prefix --length 8
    python benchmarks/explore_prompt_value.py --benchmark hwu64 --seeds 0 --epochs 3 --first-tasks 8 --prompt finetune --lr 2e-5

Variants, each a ridge readout (the routing-free part of ``growing_pool`` and ``ranpac``):
``ranpac`` on frozen features; ``ensemble(frozen x2)``, two ridges on independent random
projections of the same frozen features, logits summed (no prompts at all); ``ranpac 20k``,
one ridge with twice the random features; ``untrained``, features through a random
U(-1, 1) prompt never trained; ``fsa<k>``, the same prompt trained on the first ``k``
experiences with a cosine head (first-session adaptation, as RanPAC's phase one and APER;
``k`` = all experiences is joint prompt tuning: not continual, the ceiling of what one
learned input prompt could add). Each prompted variant alone, its logits summed with the
frozen ridge's, and its features concatenated with the frozen ones. ``--prompt finetune``
trains every weight of a copy of the encoder instead of a prompt (``finetune-fsa<k>``):
with all experiences, how far any joint adaptation of the backbone lifts the same readout.

Features of the last 4 layers of MiniLM-L6 (frozen, or through a 32-token input prompt;
``--prompt prefix``: key/value prefixes of ``--length`` on every layer instead, as prefix tuning)
are cached under .cache/explore_prompt_value/; each readout is a RanPAC ridge on 10,000
random ReLU features, solved on all training rows (the class-incremental ridge is
order-free: its final readout equals this one), scored on the validation rows as the
mean over experiences of each experience's accuracy.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from provenance import provenance, write_json
from suites import suite_options

from cl_prompts.backbones import BackboneConfig, load_backbone
from cl_prompts.data import load_benchmark
from cl_prompts.data.tensors import trim_padding
from cl_prompts.methods.closed_form import RidgeStatistics
from cl_prompts.run import RunConfig

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "explore_prompt_value"
LAYERS, PROMPT_LEN, BATCH = 4, 32, 64
FINETUNE_HEAD_LR = 1e-3  # the `finetune` method's head_lr


def prompted(bb, x: dict, prompt: torch.Tensor | None):
    """The backbone's output for the batch ``x`` through ``prompt``: an input prompt (L, D), or
    key/value prefixes of every layer (layers, 2, L, D), or nothing (None)."""
    b = len(x["input_ids"])
    if prompt is None:
        return bb(x, layers=LAYERS)
    if prompt.dim() == 2:  # (L, D) in front of the token embeddings
        return bb(x, input_prompts=prompt.expand(b, -1, -1), layers=LAYERS)
    prefixes = {layer: p.expand(b, -1, -1, -1) for layer, p in enumerate(prompt)}  # (B, 2, L, D) each
    return bb(x, prefix_prompts=prefixes, layers=LAYERS)


def initial_prompt(bb, kind: str, length: int, seed: int) -> torch.Tensor:
    """U(-1, 1) values: (length, D) for ``kind`` "input", (layers, 2, length, D) for "prefix"."""
    g = torch.Generator().manual_seed(1000 + seed)
    shape = (length, bb.hidden_size) if kind == "input" else (bb.num_layers, 2, length, bb.hidden_size)
    return torch.rand(*shape, generator=g) * 2 - 1


def features(bb, tokens: dict, prompt: torch.Tensor | None) -> torch.Tensor:
    """(N, 4 * D) layer features of every row, through ``prompt`` (see :func:`prompted`) when given."""
    out = []
    with torch.no_grad():
        for s in range(0, len(tokens["input_ids"]), BATCH):
            x = trim_padding({k: v[s:s + BATCH] for k, v in tokens.items()})
            out.append(prompted(bb, x, prompt).layer_features().float())
    return torch.cat(out)


def train_prompt(bb, tokens, y, classes, prompt, epochs, lr, seed, feature="layers"):
    """Train ``prompt`` with a cosine head over ``classes`` on the rows of those classes."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.nonzero(torch.isin(y, torch.tensor(classes))).flatten()
    remap = {c: i for i, c in enumerate(classes)}
    width = bb.hidden_size * (LAYERS if feature == "layers" else 1)
    prompt = torch.nn.Parameter(prompt.clone())
    head = torch.nn.Parameter(torch.randn(len(classes), width, generator=g) * 0.02)
    opt = torch.optim.Adam([prompt, head], lr=lr)
    for _ in range(epochs):
        for b in idx[torch.randperm(len(idx), generator=g)].split(32):
            x = trim_padding({k: v[b] for k, v in tokens.items()})
            out = prompted(bb, x, prompt)
            f = out.layer_features() if feature == "layers" else out.pooled
            logits = 16.0 * F.normalize(f, dim=-1) @ F.normalize(head, dim=-1).T
            t = torch.tensor([remap[int(c)] for c in y[b]])
            loss = F.cross_entropy(logits, t)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return prompt.detach()


def finetune_encoder(bb, tokens, y, classes, epochs, lr, seed, feature="layers"):
    """A copy of ``bb`` with every weight trained at ``lr`` with a cosine head over ``classes``
    (AdamW, weight decay 0.01, the head at 1e-3: the ``finetune`` method's optimiser), frozen again."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.nonzero(torch.isin(y, torch.tensor(classes))).flatten()
    remap = {c: i for i, c in enumerate(classes)}
    tuned = copy.deepcopy(bb)
    tuned.requires_grad_(True)
    width = bb.hidden_size * (LAYERS if feature == "layers" else 1)
    head = torch.nn.Parameter(torch.randn(len(classes), width, generator=g) * 0.02)
    opt = torch.optim.AdamW([{"params": list(tuned.parameters())}, {"params": [head], "lr": FINETUNE_HEAD_LR}],
                            lr=lr, weight_decay=0.01)
    for _ in range(epochs):
        for b in idx[torch.randperm(len(idx), generator=g)].split(32):
            out = prompted(tuned, trim_padding({k: v[b] for k, v in tokens.items()}), None)
            f = out.layer_features() if feature == "layers" else out.pooled
            logits = 16.0 * F.normalize(f, dim=-1) @ F.normalize(head, dim=-1).T
            loss = F.cross_entropy(logits, torch.tensor([remap[int(c)] for c in y[b]]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return tuned.requires_grad_(False).eval()


def ridge_logits(train_f, train_y, val_f, num_classes, seed, ridge=100.0, dim=10000):
    torch.manual_seed(seed)
    stats = RidgeStatistics(train_f.shape[1], num_classes, dim)
    for s in range(0, len(train_f), 2048):
        stats.add(train_f[s:s + 2048], train_y[s:s + 2048])
    w = stats.solve(ridge)
    return torch.cat([stats.expand(val_f[s:s + 2048]) @ w for s in range(0, len(val_f), 2048)])


def score(logits, y, experiences) -> float:
    pred = logits.argmax(1)
    accs = [float((pred[m] == y[m]).float().mean()) for m in (torch.isin(y, torch.tensor(e)) for e in experiences)]
    return 100 * sum(accs) / len(accs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--benchmark", default="hwu64")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--first-tasks", type=int, default=1, help="experiences the prompt trains on")
    ap.add_argument("--feature", default="layers", choices=["layers", "pooled"])
    ap.add_argument("--prompt", default="input", choices=["input", "prefix", "finetune"],
                    help="an input prompt of --length tokens, key/value prefixes of --length on every layer, "
                         "or no prompt and every weight of the encoder trained (AdamW; --lr 2e-5 as `finetune`)")
    ap.add_argument("--length", type=int, default=PROMPT_LEN)
    ap.add_argument("--out", default=None,
                    help="results JSON (default benchmarks/results/prompt_value/<benchmark>-fsa<k>.json)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg = RunConfig(**suite_options(args.benchmark), eval_split="val")
    bb = load_backbone(BackboneConfig(name_or_path="minilm", max_length=cfg.max_length))
    ds = load_benchmark(cfg)
    tr, va = bb.tokenize(ds.train.texts), bb.tokenize(ds.test.texts)
    ty, vy = torch.tensor(ds.train.labels), torch.tensor(ds.test.labels)
    exps = [list(e) for e in ds.experiences]
    cache = CACHE / args.benchmark
    cache.mkdir(parents=True, exist_ok=True)

    def cached(name, fn):
        p = cache / f"{name}.pt"
        if not p.exists():
            t0 = time.time()
            torch.save(fn(), p)
            print(f"  computed {name} in {time.time() - t0:.0f}s", flush=True)
        return torch.load(p)

    frozen = cached("frozen", lambda: (features(bb, tr, None), features(bb, va, None)))
    rows = {}
    for seed in args.seeds:
        first = [c for e in exps[: args.first_tasks] for c in e]
        if args.prompt == "finetune":  # no prompt: the untrained variant would be the frozen one
            kind, variants, init = "finetune-", {}, None
        else:
            init = initial_prompt(bb, args.prompt, args.length, seed)
            kind = "" if (args.prompt, args.length) == ("input", PROMPT_LEN) else f"{args.prompt}{args.length}-"
            variants = {f"{kind}untrained": cached(f"{kind}untrained-s{seed}",
                                                   lambda init=init: (features(bb, tr, init), features(bb, va, init)))}
        for ep in args.epochs:
            name = f"{kind}fsa{args.first_tasks}-{args.feature}-e{ep}-lr{args.lr:g}-s{seed}"

            def make(ep=ep, first=first, init=init, seed=seed):
                if args.prompt == "finetune":
                    tuned = finetune_encoder(bb, tr, ty, first, ep, args.lr, seed, args.feature)
                    return features(tuned, tr, None), features(tuned, va, None)
                p = train_prompt(bb, tr, ty, first, init, ep, args.lr, seed, args.feature)
                return features(bb, tr, p), features(bb, va, p)
            variants[name] = cached(name, make)
        C = ds.num_classes
        base = ridge_logits(frozen[0], ty, frozen[1], C, seed)
        second = ridge_logits(frozen[0], ty, frozen[1], C, seed + 100)
        res = {"ranpac": score(base, vy, exps), "ensemble(frozen x2)": score(base + second, vy, exps),
               "ranpac 20k": score(ridge_logits(frozen[0], ty, frozen[1], C, seed, dim=20000), vy, exps)}
        for name, (ftr, fva) in variants.items():
            own = ridge_logits(ftr, ty, fva, C, seed + 100)
            res[f"{name}"] = score(own, vy, exps)
            res[f"{name} + frozen (sum)"] = score(base + own, vy, exps)
            res[f"{name} ++ frozen (concat)"] = score(
                ridge_logits(torch.cat([frozen[0], ftr], 1), ty, torch.cat([frozen[1], fva], 1), C, seed), vy, exps)
        rows[seed] = res
        for k, v in res.items():
            print(f"seed {seed}  {k:45s} {v:6.2f}", flush=True)
    out = Path(args.out or ROOT / "benchmarks" / "results" / "prompt_value" /
               f"{args.benchmark}-{kind}fsa{args.first_tasks}-{args.feature}.json")
    doc = {**provenance("explore_prompt_value", None),
           "split": "val", "metric": "mean over experiences of each experience's val accuracy (%)", "seeds": rows}
    write_json(out, doc)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
