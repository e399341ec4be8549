"""Closed-form classifiers on cached frozen features, scored on validation data only.

The frozen backbone's per-layer pooled features of every train and validation sentence
are computed once (cached under ``--cache``); each variant is then fitted on all train
rows at once (a closed-form classifier on frozen features is exactly class-incremental,
so this equals its final model after the stream) and scored by final average accuracy
on the validation split (CLINC150's val, HWU64's held-out 10%), for several projection
seeds. Test data are never read.

    .venv/bin/python benchmarks/explore_closed_form.py --dims 10000 --layers 4 --out benchmarks/results/explore_closed_form/layers4-dim10000.json
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from provenance import provenance, write_json
from suites import suite_options, suite_parser

from cl_prompts.data import load_benchmark
from cl_prompts.data.tensors import trim_padding
from cl_prompts.methods.spd_solve import solve_spd
from cl_prompts.run import RunConfig


@torch.no_grad()
def layer_features(backbone, texts: list[str], batch: int = 256) -> torch.Tensor:
    """(N, n_layers, D) pooled outputs of every layer, float32."""
    tokens = backbone.tokenize(texts)
    out = []
    for s in range(0, len(texts), batch):
        inputs = trim_padding({k: v[s : s + batch] for k, v in tokens.items()})
        out.append(backbone(inputs, layers=backbone.num_layers).layer_pooled.float())
    return torch.cat(out)


def cached_features(name: str, cache: Path, backbone_name: str, data_root: str | None) -> dict:
    """{train_x, train_y, val_x, val_y, experiences} of suite ``name``, computed once."""
    path = cache / f"{name}-{backbone_name}.pt"
    if path.is_file():
        return torch.load(path)
    from cl_prompts.backbones import BackboneConfig, load_backbone

    backbone = load_backbone(BackboneConfig(name_or_path=backbone_name))
    dataset = load_benchmark(RunConfig(**suite_options(name, data_root), backbone=backbone_name, eval_split="val"))
    doc = {"train_x": layer_features(backbone, dataset.train.texts),
           "train_y": torch.tensor(dataset.train.labels), "val_x": layer_features(backbone, dataset.test.texts),
           "val_y": torch.tensor(dataset.test.labels), "experiences": dataset.experiences}
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(doc, path)
    return doc


def query(x: torch.Tensor, layers: int) -> torch.Tensor:
    """(N, n, D) -> (N, layers * D): the last ``layers`` layers, each unit length (the library's query)."""
    return F.normalize(x[:, -layers:].double(), dim=-1).flatten(1)


def final_average_accuracy(logits: torch.Tensor, y: torch.Tensor, experiences: list[list[int]]) -> float:
    hit = (logits.argmax(1) == y).double()
    return float(torch.stack([hit[torch.isin(y, torch.tensor(e))].mean() for e in experiences]).mean() * 100)


def ranpac_logits(xtr, ytr, xva, dim: int, ridges: list[float], seed: int, num_classes: int) -> list[torch.Tensor]:
    """Ridge on ReLU random features of unit rows (cl_prompts' ``ranpac``): one logits per ridge."""
    proj = torch.randn(xtr.shape[1], dim, generator=torch.Generator().manual_seed(seed)).double()
    h = torch.relu(F.normalize(xtr, dim=1) @ proj)
    sums = torch.zeros(num_classes, dim, dtype=torch.float64).index_add_(0, ytr, h)
    gram = h.T @ h
    hva = torch.relu(F.normalize(xva, dim=1) @ proj)
    return [hva @ solve_spd(gram, sums.T, ridge) for ridge in ridges]


def slda_logits(xtr, ytr, xva, shrinkage: float, num_classes: int) -> torch.Tensor:
    """Shared-covariance LDA on unit rows (cl_prompts' ``slda``)."""
    xtr, xva = F.normalize(xtr, dim=1), F.normalize(xva, dim=1)
    counts = torch.bincount(ytr, minlength=num_classes).double()
    means = torch.zeros(num_classes, xtr.shape[1], dtype=torch.float64).index_add_(0, ytr, xtr) / counts[:, None]
    centred = xtr - means[ytr]
    cov = centred.T @ centred / len(ytr)
    w = solve_spd((1 - shrinkage) * cov, means.T, shrinkage)
    return xva @ w - 0.5 * (means * w.T).sum(1)


def standardise(logits: torch.Tensor) -> torch.Tensor:
    """Logits divided by their overall standard deviation (fusing two classifiers' scales)."""
    return logits / logits.std()


RIDGES = [30.0, 100.0, 300.0]


def explore(feats: dict, seeds: list[int], dims: list[int], layer_counts: list[int], betas: list[float]) -> list[dict]:
    xtr_all, ytr, xva_all, yva = feats["train_x"], feats["train_y"], feats["val_x"], feats["val_y"]
    exps = feats["experiences"]
    c = int(max(ytr.max(), yva.max())) + 1
    rows = []

    def record(name, options, accs):
        rows.append({"variant": name, "options": options, "val_accuracy": sum(accs) / len(accs), "per_seed": accs})
        print(f"  {name} {options}: {sum(accs) / len(accs):.2f} {['%.2f' % a for a in accs]}", flush=True)

    for layers in layer_counts:
        xtr, xva = query(xtr_all, layers), query(xva_all, layers)
        slda = {s: slda_logits(xtr, ytr, xva, s, c) for s in (1e-6, 1e-4, 1e-2)}
        for s, lg in slda.items():
            record("slda", {"layers": layers, "shrinkage": s}, [final_average_accuracy(lg, yva, exps)])
        for dim in dims:
            per_seed = [ranpac_logits(xtr, ytr, xva, dim, RIDGES, seed, c) for seed in seeds]  # [seed][ridge]
            for r, ridge in enumerate(RIDGES):
                logits = [lg[r] for lg in per_seed]
                record("ranpac", {"layers": layers, "dim": dim, "ridge": ridge},
                       [final_average_accuracy(lg, yva, exps) for lg in logits])
                for s, lg_s in slda.items():
                    for beta in betas:
                        record("ranpac+slda", {"layers": layers, "dim": dim, "ridge": ridge, "shrinkage": s,
                                               "beta": beta},
                               [final_average_accuracy(standardise(lg) + beta * standardise(lg_s), yva, exps)
                                for lg in logits])
    return rows


def main(argv=None) -> dict:
    p = suite_parser(__doc__, backbone="minilm")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="projection seeds")
    p.add_argument("--dims", nargs="+", type=int, default=[5000, 10000], help="random feature counts")
    p.add_argument("--layers", nargs="+", type=int, default=[4, 6], help="last layers read")
    p.add_argument("--betas", nargs="*", type=float, default=[],
                   help="weights of slda's standardised logits added to ranpac's (an ensemble of the two)")
    p.add_argument("--cache", default=".cache/explore_closed_form")
    p.add_argument("--out", default="benchmarks/results/explore_closed_form/explore.json")
    args = p.parse_args(argv)
    doc = {**provenance("explore_closed_form", argv), "seeds": args.seeds, "benchmarks": {}}
    for name in args.benchmarks:
        start = time.perf_counter()
        feats = cached_features(name, Path(args.cache), args.backbone, args.data_root)
        print(f"[explore] {name}: features in {time.perf_counter() - start:.0f} s", flush=True)
        doc["benchmarks"][name] = explore(feats, args.seeds, args.dims, args.layers, args.betas)
        write_json(args.out, doc)
    return doc


if __name__ == "__main__":
    main()
