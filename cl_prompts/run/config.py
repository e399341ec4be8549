"""The configuration of a run (:class:`RunConfig`) and the config files it is read from (``--config``)."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cl_prompts.checks import check_choice, is_int, is_number
from cl_prompts.choices import IMAGE_BENCHMARKS, POOLINGS, PRECISIONS, is_image_benchmark
from cl_prompts.safe_io import MAX_JSON_BYTES, MAX_JSON_DEPTH, json_depth, parse_json, read_text

DEFAULT_METHOD = "growing_pool"
DEFAULT_IMAGE_BACKBONE = "google/vit-base-patch16-224"
EVAL_SPLITS = ("test", "val")
CLASS_ORDERS = ("file", "sorted")  # besides "seed:N"
# Options that do not change the trained model or its final accuracies; a resume may change them.
RUN_ONLY = ("out", "resume", "overwrite", "device", "progress", "plots", "eval_every", "eval_subsample",
            "checkpoint_every", "log", "trust_remote_code", "calibrate")
# Checked through the backbone's identity (which holds the resolved pooling and layer) rather
# than as given, so that a run saved before the option existed still resumes.
CHECKED_BY_BACKBONE = ("pooling", "query_layer")
# Options a --config file may not set: a file from someone else could aim the run at any folder,
# replace its results or run a model's code. The command line alone sets them.
COMMAND_LINE_ONLY = ("out", "overwrite", "resume", "trust_remote_code")
# --quick: a fixed miniature of the stream (per class) for a first look.
QUICK = {"per_class": 10, "test_per_class": 5}


@dataclass
class RunConfig:
    """Everything needed to rerun a run (stored in the results JSON as ``config``).

    benchmark: text: ``"clinc150"`` or ``"file:PATH"`` (CSV/JSON of text,label); images:
        ``"split_cifar100"``, ``"imagenet_r"`` or ``"folder:PATH"`` (a sub-folder of
        images per class); ignored when a dataset is passed to :func:`run` (then it only
        names the run).
    backbone: ``"minilm"`` (the default for text), ``"google/vit-base-patch16-224"``
        (the default for images), any local folder or hub id, ``"tiny-bert"`` /
        ``"tiny-vit"`` (tests).
    method: a registered method name; method_options: its config overrides (``--set``).
    epochs / batch_size / eval_batch_size / max_length: training and tokenisation.
    experiences / class_order_seed: regroup the stream (None: the benchmark's default).
    class_order: ``"file"`` (first appearance in the data file; CLINC150: its domains'
        order, the default), ``"sorted"`` (by class name) or ``"seed:N"`` (the same as
        ``class_order_seed=N``); None: the benchmark's default (a file's sorted labels).
    quick: a fixed per-class subset of the data (a first look in about a minute).
    train_per_class / test_per_class: the few-shot protocol: at most this many training
        (test) samples per class, drawn once with seed 0 (the same samples for every run
        and seed); None: all.
    label_text: a CSV file of ``label,text`` rows: the answer text of each class for the
        methods that answer by generation (default: the class name made readable).
    instruction: a causal LM's system message (None: its chat template's default).
    query_encoder: a causal LM's query from a sentence encoder (e.g. ``"minilm"``) instead
        of the LLM's own hidden states (``CausalLMConfig.query_encoder``).
    pooling: the backbone's pooling (``BackboneConfig.pooling``): "auto" (the default of
        the model: its sentence-transformers pooling, CLS for vision; a causal LM's "text"),
        "mean" or "cls" for an encoder, "text", "mean" or "last" for a causal LM.
    query_layer: a causal LM's query layer (``CausalLMConfig.query_layer``): "auto" (its
        default, "middle"), "middle", "last" or an index into its hidden states.
    eval_split: ``"test"`` (report) or ``"val"`` (choose settings): CLINC150's own val
        split, or for a file benchmark a stratified ``val_fraction`` of its training rows,
        held out from training (seed 0, the same for every run); the test data is then
        never read.
    test_file: a separate test file for a ``file:`` benchmark (else a stratified 20% of
        its rows); text_column / label_column: the columns of a ``file:`` benchmark.
    precision: "fp32" (default), "bf16", "fp16" or "auto" (bf16 where the device computes
        it natively): autocast around the frozen encoder; prompts, keys, heads and
        closed-form statistics stay fp32.
    data_root: the folder holding ``clinc150/`` (default: $CL_PROMPTS_DATA, else the
        repository's ``../shared/data``); for images, CIFAR-100's download folder or the
        folder holding ``imagenet-r/``.
    out: the run folder; resume: continue the checkpoint in ``out``; overwrite: replace
        the results already in ``out`` (they stay until the new run has finished).
        progress: tqdm bars and the summary on stdout; plots: write the PNG plots.
    eval_every: evaluate the seen experiences after every ``eval_every``-th experience and
        after the last (0: after the last only); the rows in between are left empty.
    eval_subsample: the evaluations before the last experience score at most this many
        test samples per class (drawn once with seed 0, the same for every run); the last
        scores the whole test set and the subsample apart, and forgetting and backward
        transfer are computed on the subsample throughout (None: every evaluation scores
        the whole test set).
    checkpoint_every: seconds between checkpoints, 0 (after every experience) or "auto"
        (default). With seconds, one is written after an experience once this much time has
        passed since the run (or its resume) started or since the last checkpoint. "auto"
        writes one after every experience, except that a checkpoint which took over a second
        to write (a wide closed-form model's is about 1 GB, 5-6 s on a 2-core CPU) is followed
        by the next only after 20 times that long: writing takes at most about 5% of the run.
        Always after the last experience (the saved model). A run stopped midway resumes from
        its last checkpoint and runs the experiences after it again, to the same results.
    calibrate: fit the out-of-scope threshold and temperature after the last experience,
        on the benchmark's held-out in-scope texts where it has them (CLINC150); False
        skips it (a causal LM scores every seen answer of each text: on few-shot CLINC150
        as long as the evaluation). The run then predicts without an out-of-scope flag.
    log: live loggers, ``"tensorboard"`` (events in ``<out>/tensorboard``) and/or
        ``"wandb"``: the loss of every step and the accuracies after each experience.
    trust_remote_code: let transformers run code shipped with the backbone model (off:
        such a model is refused).
    """

    benchmark: str = "clinc150"
    method: str = DEFAULT_METHOD
    backbone: str | None = None
    epochs: int = 1
    seed: int = 0
    batch_size: int = 32
    eval_batch_size: int = 128
    max_length: int = 48
    experiences: int | None = None
    class_order_seed: int | None = None
    class_order: str | None = None
    quick: bool = False
    train_per_class: int | None = None
    test_per_class: int | None = None
    label_text: str | None = None
    instruction: str | None = None
    query_encoder: str | None = None
    pooling: str = "auto"
    query_layer: int | str = "auto"
    eval_split: str = "test"
    val_fraction: float = 0.1
    test_file: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    data_root: str | None = None
    method_options: dict[str, Any] = field(default_factory=dict)
    out: str | None = None
    device: str = "cpu"
    precision: str = "fp32"
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    plots: bool = True
    eval_every: int = 1
    eval_subsample: int | None = None
    checkpoint_every: float | str = "auto"
    calibrate: bool = True
    log: list[str] = field(default_factory=list)
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "max_length"):
            v = getattr(self, name)
            if not is_int(v) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        for name in ("seed", "experiences", "class_order_seed"):
            v = getattr(self, name)
            if v is not None and (not is_int(v)):
                raise TypeError(f"{name} must be an int, got {v!r}")
        if self.seed is None:
            raise TypeError("seed must be an int, got None")
        self._read_class_order()
        for name in ("seed", "class_order_seed"):
            v = getattr(self, name)
            if v is not None and not 0 <= v < 2**32:  # numpy's seed range (torch's is wider)
                raise ValueError(f"{name} must be in [0, 2**32), got {v}")
        v = self.eval_every
        if not is_int(v) or v < 0:
            raise ValueError(f"eval_every must be an int >= 0 (0: the last experience only), got {v!r}")
        v = self.checkpoint_every
        if v != "auto" and (not is_number(v) or not 0 <= v < float("inf")):
            raise ValueError(f"checkpoint_every must be a number of seconds >= 0 (0: after every experience) "
                             f"or 'auto', got {v!r}")
        for name in ("train_per_class", "test_per_class", "eval_subsample"):
            v = getattr(self, name)
            if v is not None and (not is_int(v) or v < 1):
                raise ValueError(f"{name} must be an int >= 1 or None, got {v!r}")
        check_choice("pooling", self.pooling, POOLINGS)
        if not (self.query_layer in ("auto", "middle", "last") or is_int(self.query_layer)):
            raise ValueError(f"query_layer must be 'auto', 'middle', 'last' or an int index, got {self.query_layer!r}")
        for name in ("label_text", "instruction", "query_encoder"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise ValueError(f"{name} must be a non-empty string or None, got {v!r}")
        if self.experiences is not None and self.experiences < 1:
            raise ValueError(f"experiences must be >= 1, got {self.experiences}")
        if not isinstance(self.benchmark, str) or not (
            self.benchmark == "clinc150" or self.benchmark.startswith("file:") or is_image_benchmark(self.benchmark)
        ):
            raise ValueError(f"benchmark must be 'clinc150', 'file:PATH', {', '.join(map(repr, IMAGE_BENCHMARKS))} "
                             f"or 'folder:PATH', got {self.benchmark!r}")
        if self.benchmark in ("file:", "folder:"):
            raise ValueError(f"benchmark {self.benchmark}PATH needs a path after '{self.benchmark}'")
        if self.backbone is None:
            self.backbone = DEFAULT_IMAGE_BACKBONE if self.is_image else "minilm"
        if self.is_image and self.eval_split != "test":
            raise ValueError("eval_split 'val' is for text benchmarks; an image benchmark evaluates on its test split")
        if self.eval_split not in EVAL_SPLITS:
            raise ValueError(f"eval_split must be one of {list(EVAL_SPLITS)}, got {self.eval_split!r}")
        v = self.val_fraction
        if not is_number(v) or not 0.0 < v < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {v!r}")
        if self.test_file is not None and not self.benchmark.startswith("file:"):
            raise ValueError("test_file is for a file:PATH benchmark; clinc150 has its own test split")
        for name in ("text_column", "label_column"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty column name, got {getattr(self, name)!r}")
        if not (self.device == "cpu" or str(self.device).startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        if str(self.device).startswith("cuda") and not _cuda_available():
            raise ValueError(f"device {self.device!r} requested but CUDA is not available")
        check_choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.method_options, dict):
            raise TypeError(f"method_options must be a dict, got {type(self.method_options).__name__}")
        if not isinstance(self.log, (list, tuple)):
            raise TypeError(f"log must be a list of logger names, got {type(self.log).__name__}")
        from cl_prompts.results.loggers import check_loggers

        self.log = list(dict.fromkeys(self.log))
        check_loggers(self.log)
        for name in ("quick", "resume", "overwrite", "progress", "plots", "trust_remote_code", "calibrate"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: pick one")
        if self.resume and not self.out:
            raise ValueError("resume needs out: the run folder to continue")

    @property
    def is_image(self) -> bool:
        """An image benchmark (``split_cifar100``, ``imagenet_r``, ``folder:PATH``)."""
        return is_image_benchmark(self.benchmark)

    def _read_class_order(self) -> None:
        """``class_order="seed:N"`` becomes ``class_order_seed=N`` (one spelling per run)."""
        v = self.class_order
        if v in CLASS_ORDERS and self.class_order_seed is not None:
            raise ValueError(f"class_order {v!r} and class_order_seed {self.class_order_seed} disagree: give one")
        if v is None or v in CLASS_ORDERS:
            return
        head, sep, tail = str(v).partition(":")
        if head != "seed" or not sep or not tail.strip().isdigit():
            raise ValueError(f"class_order must be 'file', 'sorted' or 'seed:N', got {v!r}")
        if self.class_order_seed is not None and self.class_order_seed != int(tail):
            raise ValueError(f"class_order {v!r} and class_order_seed {self.class_order_seed} disagree: give one")
        self.class_order_seed, self.class_order = int(tail), None

    def run_dir(self, benchmark_name: str) -> Path:
        """``out``, or ``runs/<benchmark>-<method>-seed<S>`` plus what sets the run apart.

        Non-default epochs, experiences, class order, ``--quick``, the few-shot sizes,
        ``--eval-split val`` and precision each add a part (``-ep3``, ``-exp5``, ``-order7`` /
        ``-sortedorder`` / ``-fileorder``, ``-quick``, ``-fs20``, ``-test10``, ``-val``, ``-bf16``), so two
        different runs never share a folder.
        """
        if self.out:
            return Path(self.out)
        parts = [benchmark_name, self.method, f"seed{self.seed}"]
        parts += [f"ep{self.epochs}"] if self.epochs != 1 else []
        parts += [f"exp{self.experiences}"] if self.experiences is not None else []
        parts += [f"order{self.class_order_seed}"] if self.class_order_seed is not None else []
        parts += [f"{self.class_order}order"] if self.class_order is not None else []
        parts += ["quick"] if self.quick else []
        parts += [f"fs{self.train_per_class}"] if self.train_per_class is not None else []
        parts += [f"test{self.test_per_class}"] if self.test_per_class is not None else []
        parts += ["val"] if self.eval_split == "val" else []
        parts += [self.precision] if self.precision != "fp32" else []
        return Path("runs") / "-".join(parts)

    def evaluates_after(self, experience: int, num_experiences: int) -> bool:
        """Whether the seen experiences are evaluated after training ``experience``."""
        last = experience == num_experiences - 1
        return last or (self.eval_every > 0 and (experience + 1) % self.eval_every == 0)

    def identity(self) -> dict[str, Any]:
        """The options a resumed run must share with the checkpoint."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in RUN_ONLY + CHECKED_BY_BACKBONE}


def _cuda_available() -> bool:
    import torch  # here, not at the top: the config (and `cl-prompts --help`) loads without torch

    return torch.cuda.is_available()


# A run's results.json records these too, but they belong to that run, not to a repeat of it.
_NOT_REPEATED = ("out", "resume", "overwrite", "progress", "plots", "trust_remote_code")


# How a causal LM's query was made before these options existed (now "text" at the "middle").
PREDATED_CAUSAL = {"pooling": "mean", "query_layer": "last"}


def predated_options(saved: dict[str, Any]) -> dict[str, Any]:
    """The options a saved run config (a ``results.json``'s ``config``) predates, as the code
    then ran them: a causal LM's query pooled by "mean" over its "last" blocks; else none."""
    missing = {k: v for k, v in PREDATED_CAUSAL.items() if k not in saved}
    if not missing or not isinstance(saved.get("backbone"), str):
        return {}
    from cl_prompts.backbones.config import names_causal_lm  # here: RunConfig loads without torch

    return missing if names_causal_lm(saved["backbone"]) else {}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """``RunConfig`` fields from a TOML or JSON file, or from a finished run's ``results.json``.

    A file holds top-level run options and a ``method_options`` table, e.g.::

        method = "ranpac"
        seed = 1
        [method_options]
        ridge = 100.0

    A ``results.json`` gives its run's options and its method's full config (its ``out``,
    ``overwrite`` and display options are not taken; options it predates are as the code
    then ran them, :func:`predated_options`). Unknown keys are refused.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"--config file not found: {p}")
    if p.suffix not in (".toml", ".json"):
        raise ValueError(f"--config must be a .toml or .json file (a run's results.json works too), got {p}")
    text = read_text(p, "--config", MAX_JSON_BYTES)
    if p.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"--config {p} cannot be read: {exc}") from None
        except RecursionError:
            raise ValueError(f"--config {p} is nested too deeply to be a config; refusing it") from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ValueError(f"--config {p} nests more than {MAX_JSON_DEPTH} levels deep")
    else:
        data = parse_json(text, f"--config {p}", expect=None)
    if not isinstance(data, dict):
        raise ValueError(f"--config {p} must hold a table of options, got {type(data).__name__}")
    if "accuracy_matrix" in data and isinstance(data.get("config"), dict):  # a run's results.json
        options = data.get("method_config") or data["config"].get("method_options", {})
        data = {k: v for k, v in data["config"].items() if k not in _NOT_REPEATED}
        data = {**predated_options(data), **data}  # a repeat runs as the run did
        data["method_options"] = options
    else:
        kept = sorted(k for k in COMMAND_LINE_ONLY if k in data)
        if kept:
            raise ValueError(f"--config {p} sets {kept}: {', '.join(COMMAND_LINE_ONLY)} come from the command "
                             "line only (a config file from someone else could aim the run at any folder); "
                             "remove them from the file and pass --out / --overwrite yourself")
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"--config {p}: unknown option(s) {unknown}; valid options: {sorted(fields)}")
    if not isinstance(data.get("method_options", {}), dict):
        raise ValueError(f"--config {p}: method_options must be a table of method options")
    return data

