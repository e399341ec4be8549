"""The systems ``bench_train.py`` times, each run inside its own worker process.

- ``peer``: Avalanche's ``LearningToPrompt`` (timm ViT, fp32);
- ``ours``: ``l2p`` on a transformers ViT inside ``PromptStrategy``, vision query cache on;
- ``floor`` / ``floor_two_pass``: the prompted backbone alone with fixed prompts, without
  and with an uncached query pass per step.

Each takes the parsed arguments and a precision and returns ``{"epoch_seconds": [...],
"eval_seconds": s}`` for the timed experience (after an untimed warm-up batch).
"""

from __future__ import annotations

import time

POOL, LENGTH, TOP_K, LR, CLASSES = 10, 5, 5, 0.03, 10

def images(args, seed: int, n: int | None = None, classes: range = range(CLASSES // 2, CLASSES)):
    """``n`` (default ``--images``) random images (N, 3, H, W) and labels drawn from ``classes``."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    size = 32 if args.tiny else 224
    n = args.images if n is None else n
    x = torch.randn(n, 3, size, size, generator=gen)
    return x, torch.tensor(classes)[torch.randint(0, len(classes), (n,), generator=gen)]


def our_backbone(args, precision: str):
    import torch
    from transformers import AutoModel, ViTConfig

    from cl_prompts.backbones import BackboneConfig, PromptedBackbone
    from cl_prompts.backbones.config import FAMILIES
    from cl_prompts.backbones.loading import model_kwargs

    geometry = dict(patch_size=args.patch) if not args.tiny else dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = AutoModel.from_config(ViTConfig(**geometry), **model_kwargs(FAMILIES["vit"]))
    cfg = BackboneConfig(name_or_path="vit-random", pooling="cls", query_cache_vision=True, precision=precision)
    return PromptedBackbone(model, cfg).to(args.device)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def avalanche_run(args, strategy, bench) -> dict:
    """Train ``strategy`` on the one experience (timing each epoch), then evaluate it."""
    from avalanche.core import SupervisedPlugin

    class EpochTimer(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def before_training_epoch(self, strategy, **kw):
            sync(args.device)
            self.start = time.perf_counter()

        def after_training_epoch(self, strategy, **kw):
            sync(args.device)
            self.seconds.append(time.perf_counter() - self.start)

    epochs, strategy.train_epochs = strategy.train_epochs, 1
    strategy.train(bench.train_stream[0])  # warm-up: one batch of other images and classes
    strategy.eval(bench.test_stream[:1])
    strategy.train_epochs = epochs
    timer = EpochTimer()
    strategy.plugins.append(timer)
    profiler = getattr(args, "profiler", None)  # --profile: the timed part only
    if profiler is not None:
        profiler.enable()
    strategy.train(bench.train_stream[1])
    sync(args.device)
    start = time.perf_counter()
    strategy.eval(bench.test_stream[1:])
    sync(args.device)
    if profiler is not None:
        profiler.disable()
    return {"epoch_seconds": timer.seconds, "eval_seconds": time.perf_counter() - start}


def benchmark(args):
    import torch

    from cl_prompts.integrations.benchmarks import benchmark_from_class_groups

    half = range(CLASSES // 2)  # the warm-up experience: one batch of the first half of the classes
    parts = [images(args, 2, args.batch_size, half), images(args, 0)], [images(args, 3, args.batch_size, half),
                                                                          images(args, 1)]
    train, test = ((torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]])) for a, b in parts)
    return benchmark_from_class_groups(torch.utils.data.TensorDataset(*train), train[1],
                                       torch.utils.data.TensorDataset(*test), test[1],
                                       [list(half), list(range(CLASSES // 2, CLASSES))])


def run_peer(args, precision: str) -> dict:
    from avalanche.training.supervised import LearningToPrompt

    strategy = LearningToPrompt(
        model_name=f"vit_base_patch{args.patch}_224", pretrained=False, num_classes=CLASSES, pool_size=POOL,
        prompt_length=LENGTH, top_k=TOP_K, lr=LR, train_mb_size=args.batch_size, eval_mb_size=args.batch_size,
        train_epochs=args.epochs, device=args.device, evaluator=None)
    return avalanche_run(args, strategy, benchmark(args))


def run_ours(args, precision: str) -> dict:
    from cl_prompts.integrations.strategy import PromptStrategy
    from cl_prompts.methods import build_model

    options = dict(pool_size=POOL, prompt_length=LENGTH, top_k=TOP_K, lr=LR)
    if args.index:
        options["index"] = args.index
    method = build_model("l2p", our_backbone(args, precision), num_classes=CLASSES, **options)
    strategy = PromptStrategy(model=method, train_mb_size=args.batch_size, eval_mb_size=args.batch_size,
                              train_epochs=args.epochs, device=args.device, evaluator=None, precision=precision)
    return avalanche_run(args, strategy, benchmark(args))


def step(bb, prompts, head, opt, x, y, two_pass: bool) -> None:
    """One floor step: [query pass,] prompted forward, and with ``opt`` CE, backward and Adam."""
    import torch.nn.functional as F

    if two_pass:
        bb.query_features(x, use_cache=False)
    logits = head(bb(x, input_prompts=prompts.expand(len(x), -1, -1)).prompt_pooled)
    if opt is not None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(logits, y).backward()
        opt.step()


def run_floor(args, precision: str, two_pass: bool = False) -> dict:
    import torch

    bb = our_backbone(args, precision)
    prompts = torch.nn.Parameter(torch.empty(TOP_K * LENGTH, bb.hidden_size, device=args.device).uniform_(-1, 1))
    head = torch.nn.Linear(bb.hidden_size, CLASSES).to(args.device)
    opt = torch.optim.Adam([prompts, *head.parameters()], lr=LR)
    (x, y), (xe, _) = images(args, 0), images(args, 1)
    batches = [(x[i : i + args.batch_size].to(args.device), y[i : i + args.batch_size].to(args.device))
               for i in range(0, len(x), args.batch_size)]
    warm = [(w.to(args.device), t.to(args.device)) for w, t in [images(args, 2, args.batch_size)]]
    seconds = []
    for xb, yb in warm:  # warm-up: one step and one evaluation batch of other images
        step(bb, prompts, head, opt, xb, yb, two_pass)
        with torch.no_grad():
            step(bb, prompts, head, None, xb, yb, two_pass)
    for _ in range(args.epochs):
        sync(args.device)
        start = time.perf_counter()
        for xb, yb in batches:
            step(bb, prompts, head, opt, xb, yb, two_pass)
        sync(args.device)
        seconds.append(time.perf_counter() - start)
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(xe), args.batch_size):
            step(bb, prompts, head, None, xe[i : i + args.batch_size].to(args.device), None, two_pass)
    sync(args.device)
    return {"epoch_seconds": seconds, "eval_seconds": time.perf_counter() - start}


SYSTEMS = {"peer": run_peer, "ours": run_ours, "floor": run_floor,
           "floor_two_pass": lambda args, p: run_floor(args, p, two_pass=True)}
