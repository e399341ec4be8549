"""Run one method over a class-incremental vision stream (Avalanche) and write a run folder.

    python benchmarks/vision.py --benchmark split_cifar100 --root data/cifar100 --method l2p \\
        --backbone google/vit-base-patch16-224 --device cuda
    python benchmarks/vision.py --benchmark imagenet_r --root data/imagenet-r --method coda_prompt --epochs 5
    python benchmarks/vision.py --benchmark folder:my_images --experiences 5 --method ncm --set key=value

``folder:PATH`` is any ImageNet-R-style folder (one sub-folder of images per class; a seeded
stratified 20% of each class is the test set). The method is trained with
``make_strategy`` (Avalanche) one experience at a time; after each, its accuracy on every
test experience seen so far is one row of the accuracy matrix (percent). ``<out>``
(default ``runs/<benchmark>-<method>-seed<S>``) gets ``results.json`` in the format of
``cl-prompts run`` (so ``cl-prompts compare`` reads it), ``summary.md`` and the two PNG
plots. A folder already holding results is refused unless ``--overwrite``. No checkpoint
and no ``--resume`` (unlike ``cl-prompts run``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from cl_prompts import results as res
from cl_prompts.cli import parse_set
from cl_prompts.integrations.avalanche import (
    imagenet_r_benchmark,
    make_strategy,
    move_to,
    split_cifar100_benchmark,
)
from cl_prompts.run_dir import commit_staged, prepare_out_dir
from cl_prompts.run_loop import isolated_rng, score_experience, seed_everything

BENCHMARKS = ("split_cifar100", "imagenet_r", "folder:PATH")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", required=True, help="split_cifar100, imagenet_r or folder:PATH")
    p.add_argument("--method", default="l2p", help="a registered method (default l2p)")
    p.add_argument("--backbone", default="google/vit-base-patch16-224", help="hub id, local folder or tiny-vit")
    p.add_argument("--root", help="data folder (CIFAR-100 download folder; the extracted imagenet-r/)")
    p.add_argument("--experiences", type=int, default=10)
    p.add_argument("--class-order-seed", dest="class_order_seed", type=int)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", dest="batch_size", type=int, default=32)
    p.add_argument("--eval-batch-size", dest="eval_batch_size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (image decoding)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--out", help="run folder (default runs/<benchmark>-<method>-seed<S>)")
    p.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    p.add_argument("--set", dest="set", action="append", default=[], metavar="KEY=VALUE",
                   help="method config option (repeatable), e.g. --set pool_size=10")
    p.add_argument("--no-plots", dest="plots", action="store_false", default=True)
    p.add_argument("--no-progress", dest="progress", action="store_false", default=True)
    return p.parse_args(argv)


def benchmark_name(spec: str) -> str:
    """``split_cifar100`` / ``imagenet_r``, or the folder's name for ``folder:PATH``."""
    if spec in ("split_cifar100", "imagenet_r"):
        return spec
    if spec.startswith("folder:") and len(spec) > len("folder:"):
        return Path(spec[len("folder:"):]).name or "folder"
    raise ValueError(f"benchmark must be one of {list(BENCHMARKS)}, got {spec!r}")


def build_benchmark(args: argparse.Namespace, backbone: Any) -> Any:
    """The Avalanche benchmark named by ``args.benchmark``, via the library's vision builders."""
    common = dict(num_experiences=args.experiences, class_order_seed=args.class_order_seed)
    if args.benchmark == "split_cifar100":
        return split_cifar100_benchmark(args.root, backbone, **common)
    if args.benchmark == "imagenet_r":
        if args.root is None:
            raise ValueError("imagenet_r needs --root: the extracted imagenet-r/ folder")
        root = Path(args.root)
        root = root / "imagenet-r" if (root / "imagenet-r").is_dir() else root
        return imagenet_r_benchmark(root, backbone, **common)
    bm = imagenet_r_benchmark(Path(args.benchmark[len("folder:"):]), backbone, **common)
    bm.name = benchmark_name(args.benchmark)
    return bm


class Progress(SupervisedPlugin):
    """One tqdm bar per training experience (batches; the loss as postfix)."""

    def __init__(self, enabled: bool, n_exp: int):
        super().__init__()
        self.enabled, self.n_exp = enabled, n_exp
        self.bar: Any = None

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        epochs = strategy.train_epochs if getattr(strategy.method, "requires_training", True) else 1
        batches = -(-len(strategy.experience.dataset) // strategy.train_mb_size) * epochs
        desc = f"exp {strategy.experience.current_experience + 1}/{self.n_exp}"
        self.bar = tqdm(total=batches, desc=desc, unit="batch", leave=False, disable=not self.enabled)

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self.bar.update(1)
        if strategy.loss is not None and getattr(strategy.method, "requires_training", True):
            self.bar.set_postfix(loss=f"{float(strategy.loss.detach()):.3f}", refresh=False)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.bar.close()


@torch.no_grad()
def evaluate_seen(
    method: Any, test_stream: Any, upto: int, batch_size: int, device: str, workers: int = 0
) -> tuple[list, list]:
    """Accuracy (%) and task-id accuracy (%, or None) on test experiences ``0..upto``; no task labels."""
    acc: list[float] = []
    task_acc: list[float | None] = []
    method.eval()
    with isolated_rng(device):  # a DataLoader draws from the global RNG: keep training unchanged
        for j in range(upto + 1):
            data = test_stream[j].dataset.eval()
            loader = DataLoader(data, batch_size=batch_size, num_workers=workers,
                                collate_fn=getattr(data, "collate_fn", None))
            batches = ((move_to(x, device), torch.as_tensor(y).to(device)) for x, y, *_ in loader)
            a, t = score_experience(method, batches, j)
            acc.append(a)
            task_acc.append(t)
    return acc, task_acc


def main(argv: Sequence[str] | None = None, *, backbone: Any = None) -> dict[str, Any]:
    """Run; returns the results dict (also in ``<out>/results.json``). ``backbone``: inject one (tests)."""
    from cl_prompts.methods import build_model

    args = parse_args(argv)
    name = benchmark_name(args.benchmark)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {args.device!r} requested but CUDA is not available")
    options = parse_set(args.set)
    out = Path(args.out) if args.out else Path("runs") / f"{name}-{args.method}-seed{args.seed}"
    if not args.overwrite:  # refuse before loading anything
        prepare_out_dir(out, resume=False, overwrite=False, resumable=False)
    seed_everything(args.seed)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    if backbone is None:
        from cl_prompts.backbones import BackboneConfig, load_backbone

        backbone = load_backbone(BackboneConfig(name_or_path=args.backbone))
    backbone = backbone.to(args.device)
    bm = build_benchmark(args, backbone)
    n_exp = len(bm.train_stream)
    method = build_model(args.method, backbone, bm.n_classes, **options)
    # the new results go beside the old ones until they are complete (overwrite)
    work = prepare_out_dir(out, resume=False, overwrite=args.overwrite, resumable=False)
    progress = Progress(args.progress, n_exp)
    strategy = make_strategy(method, train_mb_size=args.batch_size, eval_mb_size=args.eval_batch_size,
                             train_epochs=args.epochs, device=args.device, plugins=[progress])
    rows, task_rows, train_s, eval_s, samples = [], [], [], [], 0
    for e, exp in enumerate(bm.train_stream):
        start = time.perf_counter()
        strategy.train(exp, num_workers=args.workers)
        train_s.append(time.perf_counter() - start)
        samples += len(exp.dataset) * (args.epochs if method.requires_training else 1)
        start = time.perf_counter()
        acc, task_acc = evaluate_seen(method, bm.test_stream, e, args.eval_batch_size, args.device, args.workers)
        eval_s.append(time.perf_counter() - start)
        rows.append(acc)
        task_rows.append(task_acc)
        if args.progress:
            tqdm.write(f"exp {e + 1}/{n_exp}: avg acc on seen {sum(acc) / len(acc):.1f}%")
    matrix = res.pad_rows(rows, n_exp)
    extra: dict[str, Any] = {
        "num_classes": bm.n_classes, "train_samples": samples,
        "experiences": [list(c) for c in bm.experiences_classes],
        "experience_train_seconds": train_s, "experience_eval_seconds": eval_s,
        "runner": "benchmarks/vision.py",
    }
    if any(v is not None for row in task_rows for v in row):
        extra["task_id_accuracy_matrix"] = res.pad_rows(task_rows, n_exp)
        last = [v for v in task_rows[-1] if v is not None]
        extra["final_task_id_accuracy"] = sum(last) / len(last)
    config = {k: v for k, v in vars(args).items() if k != "set"}
    config.update(method_options=options, out=str(out))
    results = res.build_results(
        benchmark=bm.name, method=args.method, backbone=str(backbone.identity().get("name_or_path", args.backbone)),
        seed=args.seed, accuracy_matrix=matrix, train_seconds=sum(train_s), train_samples=samples,
        eval_seconds=sum(eval_s), config=config, device=args.device, extra=extra,
    )
    res.write_results(results, work / res.RESULTS_FILE)
    if args.plots:
        res.write_plots(matrix, work, title=f"{args.method} on {bm.name}")
    res.atomic_write_text(work / "summary.md", res.summary_table(results))
    commit_staged(work, out)
    if args.progress:
        print(res.summary_table(results) + f"results: {out / res.RESULTS_FILE}")
    return results


if __name__ == "__main__":
    import warnings

    # the run writes its own results files: Avalanche's notice about loggers is moot
    warnings.filterwarnings("ignore", message="No loggers specified", category=UserWarning)
    try:
        main()
    except (ValueError, TypeError, OSError) as exc:  # bad input: one line, no traceback
        raise SystemExit(f"vision.py: error: {exc}") from None
