"""Run one method over a class-incremental text stream: train, evaluate, checkpoint, report.

The loop is deliberately plain PyTorch over the experiences of a
:class:`~cl_prompts.data.TextDataset` (the same class groups the Avalanche benchmark
builders use), so that every random draw is seeded and a resumed run repeats an
uninterrupted one exactly. After every experience: evaluation on the experiences seen so
far (one row of the accuracy matrix), then an atomic checkpoint (:mod:`cl_prompts.checkpoint`).
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cl_prompts import checkpoint as ckpt
from cl_prompts import results as res

DEFAULT_METHOD = "growing_pool"
# Options that do not change what is computed; a resume may change them.
RUN_ONLY = ("out", "resume", "overwrite", "device", "progress", "plots")
# --quick: a fixed miniature of the stream (per class) for a first look.
QUICK = {"per_class": 10, "test_per_class": 5}
OUTPUT_FILES = (res.RESULTS_FILE, "accuracy_matrix.png", "accuracy_over_time.png", "summary.md")


@dataclass
class RunConfig:
    """Everything needed to rerun a run (stored in the results JSON as ``config``).

    benchmark: ``"clinc150"`` or ``"file:PATH"`` (CSV/JSON of text,label); ignored when a
        dataset is passed to :func:`run` (then it only names the run).
    method: a registered method name; method_options: its config overrides (``--set``).
    backbone: ``"minilm"``, a local folder or hub id, or ``"tiny-bert"`` (tests).
    epochs / batch_size / eval_batch_size / max_length: training and tokenisation.
    experiences / class_order_seed: regroup the stream (None: the benchmark's default).
    quick: a fixed per-class subset of the data (a first look in about a minute).
    out: the run folder; resume: continue the checkpoint in ``out``; overwrite: replace
        the results already in ``out``. progress: tqdm bars and the summary on stdout;
        plots: write the PNG plots.
    """

    benchmark: str = "clinc150"
    method: str = DEFAULT_METHOD
    backbone: str = "minilm"
    epochs: int = 1
    seed: int = 0
    batch_size: int = 32
    eval_batch_size: int = 128
    max_length: int = 48
    experiences: int | None = None
    class_order_seed: int | None = None
    quick: bool = False
    method_options: dict[str, Any] = field(default_factory=dict)
    out: str | None = None
    device: str = "cpu"
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    plots: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "max_length"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        for name in ("seed", "experiences", "class_order_seed"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise TypeError(f"{name} must be an int, got {v!r}")
        if self.seed is None:
            raise TypeError("seed must be an int, got None")
        if self.experiences is not None and self.experiences < 1:
            raise ValueError(f"experiences must be >= 1, got {self.experiences}")
        if not isinstance(self.benchmark, str) or not (
            self.benchmark == "clinc150" or self.benchmark.startswith("file:")
        ):
            raise ValueError(f"benchmark must be 'clinc150' or 'file:PATH', got {self.benchmark!r}")
        if self.benchmark == "file:":
            raise ValueError("benchmark 'file:PATH' needs a path after 'file:'")
        if not (self.device == "cpu" or str(self.device).startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} requested but CUDA is not available")
        if not isinstance(self.method_options, dict):
            raise TypeError(f"method_options must be a dict, got {type(self.method_options).__name__}")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: pick one")
        if self.resume and not self.out:
            raise ValueError("resume needs out: the run folder to continue")

    def run_dir(self, benchmark_name: str) -> Path:
        if self.out:
            return Path(self.out)
        quick = "-quick" if self.quick else ""
        return Path("runs") / f"{benchmark_name}-{self.method}-seed{self.seed}{quick}"

    def identity(self) -> dict[str, Any]:
        """The options a resumed run must share with the checkpoint."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in RUN_ONLY}


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) global RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_dataset(config: RunConfig):
    """The :class:`~cl_prompts.data.TextDataset` named by ``config.benchmark``, regrouped/subset."""
    from cl_prompts.data import load_clinc150, load_text_file

    if config.benchmark == "clinc150":
        ds = load_clinc150(num_experiences=config.experiences, class_order_seed=config.class_order_seed)
    else:
        path = Path(config.benchmark[len("file:"):])
        if not path.exists():
            raise FileNotFoundError(f"benchmark data file not found: {path}")
        if path.is_dir():
            raise IsADirectoryError(f"benchmark must name a file, got the directory {path}")
        ds = load_text_file(
            path, num_experiences=config.experiences, class_order_seed=config.class_order_seed
        )
    return ds


def prepare_out_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse an out dir holding results (unless overwrite); remove only our own files."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out must be a directory, got the file {out}")
    if resume:
        if not ckpt.has_checkpoint(out):
            raise FileNotFoundError(f"nothing to resume: no checkpoint in {out}")
        return
    ours = [out / f for f in OUTPUT_FILES if (out / f).exists()]
    if ckpt.checkpoint_root(out).exists():
        ours.append(ckpt.checkpoint_root(out))
    if ours and not overwrite:
        raise FileExistsError(
            f"out dir {out} already holds results ({', '.join(p.name for p in ours)}); "
            "pass --overwrite to replace them or --resume to continue"
        )
    for p in ours:  # only what a run writes; other files of the user stay
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def warn_truncated(backbone, texts: list[str]) -> int:
    """Count texts longer than ``backbone.config.max_length`` tokens; warn once if any.

    They are truncated by the tokenizer (not an error); the warning says how many.
    """
    limit = int(backbone.config.max_length)
    lengths = [len(ids) for ids in backbone.tokenizer(list(texts), truncation=False)["input_ids"]]
    over = sum(n > limit for n in lengths)
    if over:
        warnings.warn(
            f"{over} of {len(texts)} texts are longer than max_length={limit} tokens and were "
            f"truncated (longest: {max(lengths)} tokens); raise --max-length to keep them whole",
            UserWarning, stacklevel=2,
        )
    return over


class _Stream:
    """Tokenized train/test tensors of a dataset, split by experience."""

    def __init__(self, dataset, backbone, device: str):
        self.experiences = [list(e) for e in dataset.experiences]
        self.train = backbone.tokenize(dataset.train.texts)  # {k: (N, T)}
        self.test = backbone.tokenize(dataset.test.texts)
        self.train_y = torch.tensor(dataset.train.labels, dtype=torch.long)
        self.test_y = torch.tensor(dataset.test.labels, dtype=torch.long)
        self.device = device
        warn_truncated(backbone, dataset.train.texts + dataset.test.texts)
        for e, classes in enumerate(self.experiences):
            if not bool(torch.isin(self.train_y, torch.tensor(classes)).any()):
                raise ValueError(f"experience {e} has no training samples (classes {classes})")

    def indices(self, split: str, e: int) -> torch.Tensor:
        y = self.train_y if split == "train" else self.test_y
        return torch.nonzero(torch.isin(y, torch.tensor(self.experiences[e]))).flatten()

    def batch(self, split: str, idx: torch.Tensor) -> tuple[dict, torch.Tensor]:
        x = self.train if split == "train" else self.test
        y = self.train_y if split == "train" else self.test_y
        inputs = {k: v[idx] for k, v in x.items()}  # (B, T) each
        if "attention_mask" in inputs:
            # Drop the all-padding trailing columns (CLINC: ~11 real tokens of 48): same
            # outputs, far less compute. Query-cache keys ignore padding, so they still hit.
            used = torch.nonzero(inputs["attention_mask"].any(dim=0)).flatten()
            width = int(used.max()) + 1 if len(used) else 1
            inputs = {k: v[:, :width] for k, v in inputs.items()}  # (B, T')
        return {k: v.to(self.device) for k, v in inputs.items()}, y[idx].to(self.device)


def train_experience(model, stream: _Stream, e: int, config: RunConfig, bar) -> int:
    """Train (or feed statistics to) ``model`` on experience ``e``; returns samples seen."""
    idx = stream.indices("train", e)
    # A generator of its own: the order of batches does not depend on the global RNG.
    gen = torch.Generator().manual_seed(config.seed * 100_003 + e)
    model.train()
    optimizer = model.make_optimizer() if model.requires_training else None
    seen = 0
    for _ in range(config.epochs if model.requires_training else 1):
        order = idx[torch.randperm(len(idx), generator=gen)]
        for start in range(0, len(order), config.batch_size):
            inputs, targets = stream.batch("train", order[start : start + config.batch_size])
            if model.requires_training:
                loss = model.training_loss(inputs, targets)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"training loss became {loss.item()} in experience {e}")
                if optimizer is not None:
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            else:
                with torch.no_grad():
                    model.observe(inputs, targets)
            seen += len(targets)
            bar.update(1)
    return seen


@torch.no_grad()
def evaluate(model, stream: _Stream, upto: int, batch_size: int) -> tuple[list, list]:
    """Accuracy (%) and task-id accuracy (%, or None) on each experience ``0..upto``."""
    model.eval()
    acc, task_acc = [], []
    for j in range(upto + 1):
        idx = stream.indices("test", j)
        if len(idx) == 0:
            raise ValueError(f"experience {j} has no test samples")
        correct, task_correct, has_task = 0, 0, False
        for start in range(0, len(idx), batch_size):
            inputs, targets = stream.batch("test", idx[start : start + batch_size])
            correct += int((model(inputs).argmax(dim=-1) == targets).sum())
            picked = model.predict_task(inputs)
            if picked is not None:
                has_task = True
                task_correct += int((picked.to(targets.device) == j).sum())
        acc.append(100.0 * correct / len(idx))
        task_acc.append(100.0 * task_correct / len(idx) if has_task else None)
    return acc, task_acc


def _pad(rows: list[list], n: int) -> list[list]:
    return [list(r) + [None] * (n - len(r)) for r in rows]


def run(
    config: RunConfig,
    *,
    backbone=None,
    dataset=None,
    on_experience_end: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``config``; returns the results dict (also written to ``<out>/results.json``).

    backbone / dataset: inject ready-made ones (tests, notebooks); by default they are
    loaded from ``config.backbone`` / ``config.benchmark``.
    on_experience_end(e, state): called after the checkpoint of experience ``e``.
    """
    from tqdm.auto import tqdm

    from cl_prompts.methods import build_model

    if dataset is None:
        dataset = load_dataset(config)
    if config.quick:
        dataset = dataset.subset(QUICK["per_class"], seed=0, test_per_class=QUICK["test_per_class"])
    out = config.run_dir(dataset.name)
    prepare_out_dir(out, resume=config.resume, overwrite=config.overwrite)
    seed_everything(config.seed)
    if str(config.device).startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()  # peak_memory_mb is this run's, not the process's
    if backbone is None:
        from cl_prompts.backbones import BackboneConfig, load_backbone

        backbone = load_backbone(BackboneConfig(name_or_path=config.backbone, max_length=config.max_length))
    backbone = backbone.to(config.device)
    stream = _Stream(dataset, backbone, config.device)
    n_exp = len(stream.experiences)
    identity = {
        "method": config.method,
        "num_classes": dataset.num_classes,
        "backbone": backbone.identity(),
        "run": config.identity(),
        "experiences": stream.experiences,
    }
    options = dict(config.method_options)
    if config.resume:
        model, state = ckpt.load_checkpoint(out, backbone, identity=identity)
        state["resumed_at"] = [*state.get("resumed_at", []), state["next_experience"]]
    else:
        model = build_model(config.method, backbone, dataset.num_classes, **options)
        state = {"next_experience": 0, "accuracy": [], "task_id": [], "train_seconds": [],
                 "eval_seconds": [], "train_samples": 0}
    for e in range(state["next_experience"], n_exp):
        n_batches = -(-len(stream.indices("train", e)) // config.batch_size)
        epochs = config.epochs if model.requires_training else 1
        with tqdm(total=n_batches * epochs, desc=f"exp {e + 1}/{n_exp}", unit="batch",
                  disable=not config.progress, leave=False) as bar:
            start = time.perf_counter()
            model.begin_experience(e, stream.experiences[e])
            state["train_samples"] += train_experience(model, stream, e, config, bar)
            model.end_experience(e)
            state["train_seconds"].append(time.perf_counter() - start)
            start = time.perf_counter()
            acc, task_acc = evaluate(model, stream, e, config.eval_batch_size)
            state["eval_seconds"].append(time.perf_counter() - start)
        state["accuracy"].append(acc)
        state["task_id"].append(task_acc)
        state["next_experience"] = e + 1
        if config.progress:
            tqdm.write(f"exp {e + 1}/{n_exp}: avg acc on seen {np.mean(acc):.1f}%")
        ckpt.save_checkpoint(out, model, experience=e, state=state, identity=identity)
        if on_experience_end is not None:
            on_experience_end(e, state)
    return _finish(config, dataset, backbone, out, state)


def _finish(config: RunConfig, dataset, backbone, out: Path, state: dict) -> dict[str, Any]:
    n = len(state["accuracy"])
    matrix = _pad(state["accuracy"], n)
    extra: dict[str, Any] = {
        "num_classes": dataset.num_classes,
        "train_samples": state["train_samples"],
        "experiences": [list(e) for e in dataset.experiences],
        "experience_train_seconds": state["train_seconds"],
        "experience_eval_seconds": state["eval_seconds"],
        "resumed_at": state.get("resumed_at", []),
    }
    if any(v is not None for row in state["task_id"] for v in row):
        tid = _pad(state["task_id"], n)
        extra["task_id_accuracy_matrix"] = tid
        extra["final_task_id_accuracy"] = float(np.mean([v for v in tid[-1] if v is not None]))
    backbone_name = backbone.identity().get("name_or_path", config.backbone)
    results = res.build_results(
        benchmark=dataset.name,
        method=config.method, backbone=str(backbone_name), seed=config.seed,
        accuracy_matrix=matrix, train_seconds=sum(state["train_seconds"]),
        train_samples=state["train_samples"], eval_seconds=sum(state["eval_seconds"]),
        config=dataclasses.asdict(config), device=config.device, extra=extra,
    )
    res.write_results(results, out / res.RESULTS_FILE)
    if config.plots:
        res.write_plots(matrix, out, title=f"{config.method} on {results['benchmark']}")
    res.atomic_write_text(out / "summary.md", res.summary_table(results))
    if config.progress:
        print(res.summary_table(results))
        print(f"results: {out / res.RESULTS_FILE}\nplots:   {out}/accuracy_matrix.png, "
              f"{out}/accuracy_over_time.png\ncheckpoint: {ckpt.checkpoint_root(out)}")
    return results
