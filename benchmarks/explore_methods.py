"""Quick CLINC150-10 experiment for the methods: 1 epoch, frozen MiniLM, CPU or GPU.

A self-contained loop (not the runner): tokenize once with the backbone, train each
method experience by experience, test on the experiences seen so far (the lower
triangle of the accuracy matrix is all that final accuracy and forgetting need), and
report task-identification accuracy for methods that pick a task.

    .venv/bin/python benchmarks/explore_methods.py --methods ncm linear_probe growing_pool \
        --out benchmarks/results/explore_methods.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from cl_prompts.backbones import default_backbone, to_device
from cl_prompts.data import load_clinc150
from cl_prompts.methods import build_model


def batches(inputs, targets, size, shuffle, generator=None):
    n = targets.shape[0]
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for i in range(0, n, size):
        idx = order[i : i + size]
        yield {k: v[idx] for k, v in inputs.items()}, targets[idx]


def split_by_experience(inputs, targets, experiences):
    out = []
    for classes in experiences:
        mask = torch.isin(targets, torch.tensor(classes))
        out.append(({k: v[mask] for k, v in inputs.items()}, targets[mask]))
    return out


@torch.no_grad()
def evaluate(model, data, batch_size, device, exp_of_class):
    model.eval()
    correct = total = task_ok = 0
    picked = False
    for x, y in batches(*data, batch_size, shuffle=False):
        x, y = to_device(x, device), y.to(device)
        correct += int((model(x).argmax(-1) == y).sum())
        total += y.shape[0]
        t = model.predict_task(x)
        if t is not None:
            picked = True
            task_ok += int((t == exp_of_class[y]).sum())
    return 100.0 * correct / total, (100.0 * task_ok / total if picked else None)


def run_method(name, overrides, bb, train, test, experiences, args, device):
    torch.manual_seed(args.seed)
    model = build_model(name, bb, 150, **overrides)
    exp_of_class = torch.zeros(150, dtype=torch.long, device=device)
    for e, classes in enumerate(experiences):
        exp_of_class[torch.tensor(classes, device=device)] = e
    acc, task_acc = [], []
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    train_s = 0.0
    for e, classes in enumerate(experiences):
        t_train = time.perf_counter()
        model.begin_experience(e, classes)
        model.train()
        opt = model.make_optimizer()
        for _ in range(args.epochs if model.requires_training else 1):
            for x, y in batches(*train[e], args.batch_size, shuffle=True, generator=g):
                x, y = to_device(x, device), y.to(device)
                if opt is None:
                    model.observe(x, y)
                    continue
                opt.zero_grad()
                model.training_loss(x, y).backward()
                opt.step()
        model.end_experience(e)
        train_s += time.perf_counter() - t_train
        row, trow = [], []
        for j in range(e + 1):
            a, ta = evaluate(model, test[j], args.eval_batch_size, device, exp_of_class)
            row.append(a)
            trow.append(ta)
        acc.append(row)
        task_acc.append(trow)
        print(f"  {name} exp {e}: avg acc {sum(row) / len(row):.1f}", flush=True)
    final = acc[-1]
    forgetting = [max(acc[i][j] for i in range(j, len(acc))) - final[j] for j in range(len(final) - 1)]
    tfinal = [t for t in task_acc[-1] if t is not None]
    return {
        "method": name,
        "overrides": overrides,
        "accuracy_matrix_lower": acc,
        "final_average_accuracy": sum(final) / len(final),
        "average_forgetting": sum(forgetting) / max(1, len(forgetting)),
        "final_task_identification": sum(tfinal) / len(tfinal) if tfinal else None,
        "train_seconds": train_s,
        "total_seconds": time.perf_counter() - t0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", nargs="+", default=["ncm", "linear_probe", "growing_pool"])
    p.add_argument("--config", action="append", default=[],
                   help='per-method overrides as JSON: {"growing_pool": {"lr": 0.01}}')
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=256)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--per-class", type=int, default=None, help="train samples per class (quick runs)")
    p.add_argument("--test-per-class", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides: dict[str, dict] = {}
    for text in args.config:
        for k, v in json.loads(text).items():
            overrides.setdefault(k, {}).update(v)

    ds = load_clinc150(per_class=args.per_class, test_per_class=args.test_per_class)
    bb = default_backbone(max_length=args.max_length).to(args.device)
    tok_tr = bb.tokenize(ds.train.texts)
    tok_te = bb.tokenize(ds.test.texts)
    train = split_by_experience(tok_tr, torch.tensor(ds.train.labels), ds.experiences)
    test = split_by_experience(tok_te, torch.tensor(ds.test.labels), ds.experiences)
    results = []
    for spec in args.methods:
        name = spec.split(":")[0]  # "name:tag" runs the same method twice with different --config keys
        try:
            res = run_method(name, overrides.get(spec, {}), bb, train, test, ds.experiences, args, args.device)
        except Exception as err:  # keep going: one broken method must not lose the others' figures
            res = {"method": name, "error": f"{type(err).__name__}: {err}"}
        res["tag"] = spec
        print(json.dumps({k: v for k, v in res.items() if k != "accuracy_matrix_lower"}), flush=True)
        results.append(res)
        if args.out:  # after every method, so a run cut short keeps what it finished
            with open(args.out, "w") as f:
                json.dump({"args": vars(args), "device": str(args.device), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
