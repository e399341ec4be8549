"""The training and evaluation loop of a run: tokenized stream, one experience at a time.

Plain PyTorch over the experiences of a :class:`~cl_prompts.data.TextDataset`; every
random draw is seeded (the batch order by a generator of its own per experience), so a
resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch

from cl_prompts.backbones.precision import grad_scaler
from cl_prompts.data.tensors import take_rows, trim_padding
from cl_prompts.methods.optimization import make_lr_schedule, optimizer_step
from cl_prompts.run.config import RunConfig
from cl_prompts.run.distributed import Workers
from cl_prompts.run.evaluation import SINGLE, evaluate, score_experience

__all__ = [
    "ImageStream", "TokenizedStream", "cache_training_queries", "evaluate", "make_stream", "score_experience",
    "train_experience", "warn_truncated",
]


def warn_truncated(backbone, texts: list[str]) -> int:
    """Count texts longer than the backbone's text budget; warn once if any.

    They are truncated by the tokenizer (not an error); the warning says how many. The
    budget is ``config.max_length`` tokens, less a causal LM's template.
    """
    limit = int(getattr(backbone, "text_max_length", backbone.config.max_length))
    lengths = [len(ids) for ids in backbone.tokenizer(list(texts), truncation=False)["input_ids"]]
    over = sum(n > limit for n in lengths)
    if over:
        most = getattr(backbone, "max_tokens", max(lengths))
        advice = (f"raise --max-length to {max(lengths)} to keep them whole" if max(lengths) <= most
                  else f"the model takes at most {most} tokens" + (
                      f"; --max-length {most} keeps more of them" if limit < most else ""))
        warnings.warn(
            f"{over} of {len(texts)} texts are longer than max_length={limit} tokens and were "
            f"truncated (longest: {max(lengths)} tokens); {advice}",
            UserWarning, stacklevel=2,
        )
    return over


def require_samples(experiences: list[list[int]], labels: dict[str, torch.Tensor],
                    message: Callable[[int, str], str]) -> None:
    """Raise ValueError(message(e, split)) for the first experience without a sample in a split."""
    for e, classes in enumerate(experiences):
        for split, y in labels.items():
            if not bool(torch.isin(y, torch.tensor(classes)).any()):
                raise ValueError(message(e, split))


class TokenizedStream:
    """Tokenized train/test tensors of a dataset, split by experience."""

    def __init__(self, dataset, backbone, device: str):
        self.experiences = [list(e) for e in dataset.experiences]
        self.train = backbone.tokenize(dataset.train.texts)  # {k: (N, T)}
        self.test = backbone.tokenize(dataset.test.texts)
        self.train_y = torch.tensor(dataset.train.labels, dtype=torch.long)
        self.test_y = torch.tensor(dataset.test.labels, dtype=torch.long)
        self.device = device
        warn_truncated(backbone, dataset.train.texts + dataset.test.texts)
        require_samples(self.experiences, {"training": self.train_y, "test": self.test_y},
                        lambda e, split: _empty_experience(dataset, e, split))

    def indices(self, split: str, e: int) -> torch.Tensor:
        y = self.train_y if split == "train" else self.test_y
        return torch.nonzero(torch.isin(y, torch.tensor(self.experiences[e]))).flatten()

    def targets(self, split: str) -> torch.Tensor:
        """``(N,)`` the class of every sample of ``split``."""
        return self.train_y if split == "train" else self.test_y

    def shortest_first(self, split: str, idx: torch.Tensor) -> torch.Tensor:
        """``idx`` (N,) reordered by token count, stably: batches of alike lengths carry less padding."""
        mask = (self.train if split == "train" else self.test)["attention_mask"]
        return idx[torch.argsort(mask[idx].sum(dim=1), stable=True)]

    def batch(self, split: str, idx: torch.Tensor) -> tuple[dict, torch.Tensor]:
        x = self.train if split == "train" else self.test
        y = self.train_y if split == "train" else self.test_y
        inputs = trim_padding({k: v[idx] for k, v in x.items()})  # (B, T') each
        return {k: v.to(self.device) for k, v in inputs.items()}, y[idx].to(self.device)


class ImageStream:
    """The train/test images of an :class:`~cl_prompts.data.images.ImageDataset`, split by experience.

    A batch loads its images through the dataset's transforms (training: random crop and
    flip, drawn from torch's global RNG, which the runner seeds and checkpoints).
    """

    def __init__(self, dataset, device: str):
        self.experiences = [list(e) for e in dataset.experiences]
        self.data = {"train": dataset.train, "test": dataset.test}
        self.labels = {"train": torch.tensor(dataset.train_labels, dtype=torch.long),
                       "test": torch.tensor(dataset.test_labels, dtype=torch.long)}
        self.device = device
        require_samples(self.experiences, {"training": self.labels["train"], "test": self.labels["test"]},
                        lambda e, split: f"experience {e} (classes {self.experiences[e][:5]}) has no {split} images")

    def indices(self, split: str, e: int) -> torch.Tensor:
        return torch.nonzero(torch.isin(self.labels[split], torch.tensor(self.experiences[e]))).flatten()

    def targets(self, split: str) -> torch.Tensor:
        """``(N,)`` the class of every image of ``split``."""
        return self.labels[split]

    def shortest_first(self, split: str, idx: torch.Tensor) -> torch.Tensor:
        """``idx`` as it is: images have one size."""
        return idx

    def batch(self, split: str, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.stack([self.data[split][int(i)][0] for i in idx])  # (B, 3, H, W)
        return images.to(self.device), self.labels[split][idx].to(self.device)


def make_stream(dataset, backbone, device: str) -> TokenizedStream | ImageStream:
    """The runner's view of a text or image dataset."""
    if hasattr(dataset, "train_labels"):  # an ImageDataset
        if backbone.modality != "vision":
            raise ValueError(f"an image benchmark needs a vision backbone (e.g. --backbone "
                             f"google/vit-base-patch16-224); {backbone.config.name_or_path!r} is a text model")
        return ImageStream(dataset, device)
    if backbone.modality != "text":
        raise ValueError(f"a text benchmark needs a text backbone; {backbone.config.name_or_path!r} is a vision model")
    return TokenizedStream(dataset, backbone, device)


def _empty_experience(dataset, e: int, split: str) -> str:
    classes = dataset.experiences[e]
    names = [dataset.class_names[c] for c in classes]
    msg = f"experience {e} (classes {names[:5]}{' ...' if len(names) > 5 else ''}) has no {split} samples"
    rows = dataset.train.labels + dataset.test.labels
    single = [dataset.class_names[c] for c in classes if rows.count(c) < 2]
    if single:
        msg += (f"; {single[:5]} have a single row, which cannot be split into train and test: "
                "add rows or remove those classes")
    return msg + " (checked before training)"


def train_experience(model, stream: TokenizedStream, e: int, config: RunConfig, bar,
                     on_loss: Callable[[float], None] | None = None, workers: Workers = SINGLE) -> int:
    """Train (or feed statistics to) ``model`` on experience ``e``; returns samples seen.

    workers: under a data-parallel launch, this rank computes the gradient of its slice
    of each batch and adds its share of the samples to the statistics
    (:mod:`cl_prompts.run.distributed`).
    """
    idx = stream.indices("train", e)
    # A generator of its own: the order of batches does not depend on the global RNG.
    gen = torch.Generator().manual_seed(config.seed * 100_003 + e)
    model.train()
    optimizer = model.make_optimizer() if model.requires_training else None
    scaler = grad_scaler(model.backbone.config.precision, model.backbone.device)  # fp16 only
    epochs = config.epochs if model.requires_training else 1
    schedule = make_lr_schedule(optimizer, model.config, epochs * math.ceil(len(idx) / config.batch_size))
    params = model.trainable_parameters() if optimizer is not None else []

    def step() -> None:  # after the backward pass: clip, step, schedule
        optimizer_step(optimizer, scaler, params, model.config, schedule)

    if not workers.active:  # a data-parallel rank computes the queries of its own share only
        cache_training_queries(model, stream, idx, config.eval_batch_size)
    seen = 0
    for _ in range(epochs):
        order = idx[torch.randperm(len(idx), generator=gen)]
        for start in range(0, len(order), config.batch_size):
            inputs, targets = stream.batch("train", order[start : start + config.batch_size])
            if model.requires_training:
                if workers.active:
                    value = _parallel_step(model, inputs, targets, optimizer, scaler, workers, step)
                    _check_finite(value, e)
                else:
                    loss = model.training_loss(inputs, targets)
                    value = loss.item()  # the step's one host sync
                    _check_finite(value, e)
                    if optimizer is not None:
                        optimizer.zero_grad(set_to_none=True)
                        scaler.scale(loss).backward()
                        step()
                bar.set_postfix(loss=f"{value:.3f}", refresh=False)
                if on_loss is not None:
                    on_loss(value)
            else:
                with torch.no_grad():
                    model.observe(inputs, targets)
            seen += len(targets)
            bar.update(1)
    for name, p in model.named_parameters():
        if p.requires_grad and not bool(torch.isfinite(p).all()):
            raise FloatingPointError(f"training diverged in experience {e}: {name} holds non-finite "
                                     "values; lower the learning rate (--lr)")
    return seen


@torch.no_grad()
def cache_training_queries(model, stream, idx: torch.Tensor, batch_size: int) -> None:
    """Compute the frozen queries of the training samples ``idx`` (N,) ahead, in length-sorted
    batches of ``batch_size``, for a method whose training reads them (``frozen_query_layers``).

    The training batches, drawn at random and padded to their longest sentence, then find them
    in the backbone's query cache. Text encoders with the cache on only.
    """
    layers = model.frozen_query_layers()
    backbone = model.backbone
    if (layers is None or not isinstance(stream, TokenizedStream) or getattr(backbone, "causal", False)
            or not backbone.config.query_cache):
        return
    order = stream.shortest_first("train", idx)
    for start in range(0, len(order), batch_size):
        inputs, _ = stream.batch("train", order[start : start + batch_size])
        backbone.query_features(inputs, layers=layers)


def _check_finite(value: float, e: int) -> None:
    if not math.isfinite(value):
        raise FloatingPointError(f"training diverged in experience {e}: the loss became "
                                 f"{value}; lower the learning rate (--lr)")


def _parallel_step(model, inputs, targets: torch.Tensor, optimizer, scaler, workers: Workers,
                   step: Callable[[], None]) -> float:
    """One data-parallel step: observe this rank's share of the global batch (the method picks it),
    backpropagate this rank's slice, sum the weighted gradients over ranks, ``step()`` (clipping
    sees the summed gradient, as in one process). Returns the global batch's loss."""
    with torch.no_grad():
        model.observe(inputs, targets)
    counters = model.training_counters()
    before = [c.clone() for c in counters]
    part = workers.slice_of(len(targets))
    n = part.stop - part.start
    params = model.trainable_parameters()
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
    total = torch.zeros(1, dtype=torch.float64, device=targets.device)
    if n:
        loss = model.training_loss(take_rows(inputs, part), targets[part], observe=False)
        total += loss.detach().double() * n
        if optimizer is not None:
            scaler.scale(loss).backward()
    if counters:  # every rank adds the counts of the other ranks' slices
        added = workers.sum_(torch.cat([(c - b).reshape(-1) for c, b in zip(counters, before, strict=True)]))
        for c, b, d in zip(counters, before, added.split([c.numel() for c in counters]), strict=True):
            c.copy_(b + d.view_as(c))
    if optimizer is not None:
        workers.reduce_gradients(params, n / len(targets))
        step()
    return float(workers.sum_(total)) / len(targets)  # the step's one host sync
