"""Which of a causal LM's hidden states make the best frozen query, scored on validation data only.

The query of a causal LM (what routes ``growing_pool``'s prompts, what ``ranpac`` and
``ncm`` read) pools hidden states of the templated input. This script computes, once,
every layer's hidden states of every train and validation sentence pooled three ways:

- ``mean``: over every real token of the templated input (the library's ``query_pooling="mean"``);
- ``text``: over the input's own tokens and the template's tail, leaving out the template's
  head, whose hidden states are the same for every input (causal attention);
- ``last``: the last token, where the model starts to answer (``query_pooling="last"``).

Then it fits ``ranpac`` (the library's recipe: unit rows of each layer, ReLU random
features, ridge) on all train rows (a closed-form classifier is exactly
class-incremental, so this is its final model after the stream) for windows of
consecutive layers, and scores final average accuracy and task identification (the
predicted class's experience) on the validation split. Test data are never read.

    .venv/bin/python benchmarks/explore_llm_query.py --benchmarks hwu64 \\
        --out benchmarks/results/explore_llm_query/hwu64.json
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from explore_closed_form import final_average_accuracy, ranpac_logits
from provenance import provenance, write_json
from suites import suite_options, suite_parser
from tqdm import tqdm

from cl_prompts.data import load_benchmark
from cl_prompts.data.tensors import trim_padding
from cl_prompts.run import RunConfig

POOLINGS = ("mean", "text", "last")


@torch.no_grad()
def pooled_layers(backbone, texts: list[str], batch: int = 32) -> dict[str, torch.Tensor]:
    """{pooling: (N, num_layers + 1, D) float16}: every hidden state (0 = embeddings) pooled."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch together
    head = len(backbone.head_ids)
    out = {p: torch.zeros(len(texts), backbone.num_layers + 1, backbone.hidden_size, dtype=torch.float16)
           for p in POOLINGS}
    for s in tqdm(range(0, len(texts), batch), desc="hidden states", leave=False, mininterval=30):
        rows = order[s : s + batch]
        inputs = trim_padding({k: v for k, v in backbone.tokenize([texts[i] for i in rows]).items()})
        embeds, mask = backbone.prompted_embeddings(inputs, None)  # (B, T, D), (B, T)
        result = backbone.run_decoder(embeds, mask, hidden_states=True)
        states = list(result.hidden_states)
        states[-1] = result.last_hidden_state  # after the final norm, as the library's query
        hidden = torch.stack([h.float() for h in states], dim=1)  # (B, L + 1, T, D)
        text = mask.clone()
        first = mask.argmax(dim=1)  # first real column (left padding)
        cols = torch.arange(mask.shape[1])[None]
        text[(cols >= first[:, None]) & (cols < first[:, None] + head)] = 0
        for name, weights in (("mean", mask), ("text", text)):
            w = weights.float()[:, None, :, None]  # (B, 1, T, 1)
            out[name][rows] = ((hidden * w).sum(2) / w.sum(2)).half()
        out["last"][rows] = hidden[:, :, -1].half() if backbone.config.padding_side == "left" else \
            hidden[torch.arange(len(rows)), :, mask.sum(1) - 1].half()
    return out


def cached_features(name: str, cache: Path, backbone_name: str, data_root: str | None) -> dict:
    """{train: {pooling: x}, train_y, val: {...}, val_y, experiences} of suite ``name``, computed once."""
    path = cache / f"{name}-{backbone_name}.pt"
    if path.is_file():
        return torch.load(path)
    from cl_prompts.backbones import BackboneConfig, load_backbone

    backbone = load_backbone(BackboneConfig(name_or_path=backbone_name))
    options = suite_options(name, data_root)
    if name == "clinc150":
        options["experiences"] = 15
    dataset = load_benchmark(RunConfig(**options, backbone=backbone_name, eval_split="val"))
    doc = {"train": pooled_layers(backbone, dataset.train.texts), "train_y": torch.tensor(dataset.train.labels),
           "val": pooled_layers(backbone, dataset.test.texts), "val_y": torch.tensor(dataset.test.labels),
           "experiences": dataset.experiences}
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(doc, path)
    return doc


def window(x: torch.Tensor, end: int, width: int) -> torch.Tensor:
    """(N, L + 1, D) -> (N, width * D): hidden states end - width + 1 .. end, each unit length."""
    return F.normalize(x[:, end - width + 1 : end + 1].double(), dim=-1).flatten(1)


def task_accuracy(logits: torch.Tensor, y: torch.Tensor, experiences: list[list[int]]) -> float:
    """% of samples whose predicted class lies in their own experience."""
    task_of = torch.zeros(int(max(max(e) for e in experiences)) + 1, dtype=torch.long)
    for t, classes in enumerate(experiences):
        task_of[torch.tensor(classes)] = t
    return float((task_of[logits.argmax(1)] == task_of[y]).double().mean() * 100)


def explore(feats: dict, ends: list[int], widths: list[int], dim: int, ridge: float, seed: int) -> list[dict]:
    ytr, yva, exps = feats["train_y"], feats["val_y"], feats["experiences"]
    c = int(max(ytr.max(), yva.max())) + 1
    rows = []
    for pooling in POOLINGS:
        for width in widths:
            for end in ends:
                if end - width + 1 < 1:
                    continue
                xtr, xva = window(feats["train"][pooling], end, width), window(feats["val"][pooling], end, width)
                logits = ranpac_logits(xtr, ytr, xva, dim, [ridge], seed, c)[0]
                row = {"pooling": pooling, "end_layer": end, "width": width,
                       "val_accuracy": final_average_accuracy(logits, yva, exps),
                       "task_accuracy": task_accuracy(logits, yva, exps)}
                rows.append(row)
                print(f"  {pooling:4s} layers {end - width + 1:2d}-{end:2d}: acc {row['val_accuracy']:.2f} "
                      f"task {row['task_accuracy']:.2f}", flush=True)
    return rows


def main(argv=None) -> dict:
    p = suite_parser(__doc__, backbone="smollm2")
    p.add_argument("--ends", nargs="+", type=int, help="last layer of each window (default: every third, and the last)")
    p.add_argument("--widths", nargs="+", type=int, default=[1, 4], help="layers per window")
    p.add_argument("--dim", type=int, default=5000, help="random features")
    p.add_argument("--ridge", type=float, default=100.0)
    p.add_argument("--seed", type=int, default=0, help="projection seed")
    p.add_argument("--cache", default=".cache/explore_llm_query")
    p.add_argument("--out", default="benchmarks/results/explore_llm_query/explore.json")
    args = p.parse_args(argv)
    doc = {**provenance("explore_llm_query", argv), "dim": args.dim, "ridge": args.ridge, "seed": args.seed,
           "benchmarks": {}}
    for name in args.benchmarks:
        start = time.perf_counter()
        feats = cached_features(name, Path(args.cache), args.backbone, args.data_root)
        print(f"[explore] {name}: features in {time.perf_counter() - start:.0f} s", flush=True)
        depth = feats["train"]["mean"].shape[1] - 1
        ends = args.ends or sorted({*range(3, depth + 1, 3), depth})
        doc["benchmarks"][name] = explore(feats, ends, args.widths, args.dim, args.ridge, args.seed)
        write_json(args.out, doc)
    return doc


if __name__ == "__main__":
    main()
