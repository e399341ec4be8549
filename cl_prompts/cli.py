"""``cl-prompts``: run a method over a task sequence, or compare finished runs.

    cl-prompts run --benchmark clinc150 --method growing_pool --out runs/gp
    cl-prompts run --resume runs/gp          # continue a killed run
    cl-prompts compare runs/*                # markdown table, mean ± std over seeds
    cl-prompts predict runs/gp "book a flight to rome"   # top-k intents, out-of-scope flag
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cl_prompts import __version__
from cl_prompts.choices import POOLINGS, PRECISIONS, benchmark_help
from cl_prompts.run.config import DEFAULT_METHOD, RunConfig

# CLI flag -> RunConfig field, for the options that exist in both.
_RUN_FIELDS = (
    "benchmark", "method", "backbone", "epochs", "seed", "batch_size", "eval_batch_size",
    "max_length", "experiences", "class_order_seed", "class_order", "quick", "out", "device", "precision", "overwrite",
    "eval_split", "val_fraction", "test_file", "text_column", "label_column", "data_root",
    "eval_every", "eval_subsample", "checkpoint_every", "log", "trust_remote_code", "train_per_class", "test_per_class", "label_text", "instruction",
    "query_encoder", "pooling", "query_layer", "calibrate",
)


def query_layer_arg(text: str) -> int | str:
    """``--query-layer``: "auto", "middle", "last" or an int."""
    if text in ("auto", "middle", "last"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected middle, last or an int index, got {text!r}") from None


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``["top_k=5", "prompt_layers=[0,1]", "index=HNSW32"]`` -> dict; values parsed as JSON when they can be."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw  # a bare string such as HNSW32
        except RecursionError:
            raise ValueError(f"--set {key.strip()}: the value is nested too deeply") from None
        out[key.strip()] = value
    return out


def _seconds_or_auto(raw: str) -> float | str:
    """``--checkpoint-every``: a number of seconds or ``auto``."""
    if raw == "auto":
        return raw
    try:
        return float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds or 'auto', got {raw!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cl-prompts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cl-prompts {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and evaluate one method over a task sequence")
    # Defaults are None so that a resume can tell what the user actually typed.
    r.add_argument("--benchmark", metavar="NAME|file:PATH|folder:PATH", help=benchmark_help())
    r.add_argument("--method", help=f"a registered method (default {DEFAULT_METHOD})")
    r.add_argument("--backbone", help="minilm (default, offline), a local model folder or a hub id "
                                      "(a hub id needs the network or the Hugging Face cache)")
    r.add_argument("--epochs", type=int, help="epochs per experience (default 1)")
    r.add_argument("--seed", type=int, help="global seed (default 0)")
    r.add_argument("--seeds", type=int, nargs="+", metavar="S",
                   help="one run per seed (each in its own folder; with --out: OUT/seed<S>), "
                        "then the mean ± std table")
    r.add_argument("--batch-size", dest="batch_size", type=int, help="train batch size (default 32)")
    r.add_argument("--eval-batch-size", dest="eval_batch_size", type=int)
    r.add_argument("--max-length", dest="max_length", type=int, help="tokens per text (default 48)")
    r.add_argument("--lr", type=float, help="learning rate (method config 'lr')")
    r.add_argument("--experiences", type=int, help="regroup the classes into N experiences")
    r.add_argument("--class-order-seed", dest="class_order_seed", type=int,
                   help="a seeded random class order instead of the benchmark's (= --class-order seed:N)")
    r.add_argument("--class-order", dest="class_order", metavar="file|sorted|seed:N",
                   help="class order: first appearance in the data file, sorted by name, or a seeded "
                        "shuffle (default: the benchmark's; a file's labels sorted)")
    r.add_argument("--eval-split", dest="eval_split", choices=("test", "val"),
                   help="evaluate on test (default) or on validation data: CLINC150's val, or a "
                        "held-out --val-fraction of a file benchmark's train rows (never trained on)")
    r.add_argument("--val-fraction", dest="val_fraction", type=float,
                   help="share of each class held out with --eval-split val (default 0.1)")
    r.add_argument("--test-file", dest="test_file", metavar="PATH",
                   help="test file of a file: benchmark (default: a stratified 20%% of its rows)")
    r.add_argument("--text-column", dest="text_column", help="text column of a file: benchmark (default text)")
    r.add_argument("--label-column", dest="label_column", help="label column of a file: benchmark (default label)")
    r.add_argument("--data-root", dest="data_root", metavar="DIR",
                   help="folder holding clinc150/ (default $CL_PROMPTS_DATA, else ../shared/data)")
    r.add_argument("--quick", action="store_true", default=None, help="a small fixed subset of the data (a first look)")
    r.add_argument("--train-per-class", dest="train_per_class", type=int, metavar="N",
                   help="few-shot: at most N training samples per class (drawn once, seed 0)")
    r.add_argument("--test-per-class", dest="test_per_class", type=int, metavar="N",
                   help="at most N test samples per class (drawn once, seed 0)")
    r.add_argument("--label-text", dest="label_text", metavar="FILE",
                   help="causal LMs: a CSV of label,text rows, the answer text of each class "
                        "(default: the class name made readable, card_arrival -> 'card arrival')")
    r.add_argument("--instruction", metavar="TEXT",
                   help="causal LMs: the system message before each input (default: the model's own)")
    r.add_argument("--query-encoder", dest="query_encoder", metavar="MODEL",
                   help="causal LMs: take the frozen query (key selection, routing, closed-form features) "
                        "from this sentence encoder, e.g. minilm (default: the LLM's own hidden states)")
    r.add_argument("--pooling", choices=POOLINGS,
                   help="how the frozen backbone pools its hidden states: auto (default: the model's own; a causal "
                        "LM's text), mean or cls (encoders), text, mean or last (causal LMs; text leaves out the "
                        "instruction template's head)")
    r.add_argument("--query-layer", dest="query_layer", type=query_layer_arg, metavar="middle|last|N",
                   help="causal LMs: the hidden state the frozen query ends at: middle (default: block "
                        "num_layers // 2), last, or an index (0: the embeddings, negative from the end)")
    r.add_argument("--out", help="run folder (default runs/<benchmark>-<method>-seed<S>)")
    r.add_argument("--device", help="cpu (default) or cuda")
    r.add_argument("--precision", choices=PRECISIONS, metavar="|".join(PRECISIONS),
                   help="the frozen encoder's precision (autocast; prompts, keys and heads stay fp32): "
                        "fp32 (default), bf16, fp16, or auto: bf16 where the device computes it natively")
    r.add_argument("--resume", metavar="DIR", help="continue the run checkpointed in DIR")
    r.add_argument("--overwrite", action="store_true", default=None,
                   help="replace the results already in --out")
    r.add_argument("--config", metavar="FILE",
                   help="options from a .toml/.json file, or a run's results.json to repeat it; "
                        "flags given as well override the file (out, overwrite, resume and "
                        "trust_remote_code come from the command line only)")
    r.add_argument("--trust-remote-code", dest="trust_remote_code", action="store_true", default=None,
                   help="let transformers run Python code shipped with the --backbone model (only for "
                        "models you trust; without it such a model is refused)")
    r.add_argument("--set", dest="set", action="append", default=[], metavar="KEY=VALUE",
                   help="method config option (repeatable), e.g. --set top_k=5")
    r.add_argument("--no-progress", dest="progress", action="store_false", default=True,
                   help="no progress bars or summary on stdout")
    r.add_argument("--no-plots", dest="plots", action="store_false", default=True,
                   help="skip the PNG plots")
    r.add_argument("--eval-every", dest="eval_every", type=int, metavar="N",
                   help="evaluate after every N-th experience and the last (default 1)")
    r.add_argument("--eval-subsample", dest="eval_subsample", type=int, metavar="N",
                   help="the evaluations before the last experience score at most N test samples per class "
                        "(drawn once, seed 0); the last scores them all. Forgetting is computed on those N")
    r.add_argument("--checkpoint-every", dest="checkpoint_every", type=_seconds_or_auto, metavar="SECONDS|auto",
                   help="write a checkpoint after an experience once this many seconds have passed since the "
                        "last (0: after every experience; always after the last). Default auto: after every "
                        "experience unless the last checkpoint took over a second to write, then at most "
                        "about 5%% of the run's time")
    r.add_argument("--no-calibrate", dest="calibrate", action="store_false", default=None,
                   help="skip fitting the out-of-scope threshold after the last experience (CLINC150); "
                        "predictions then carry no out-of-scope flag")
    r.add_argument("--log", action="append", choices=("tensorboard", "wandb"), metavar="tensorboard|wandb",
                   help="live logs: loss per step, accuracy per experience (repeatable; TensorBoard "
                        "events in OUT/tensorboard; W&B offline with WANDB_MODE=offline)")
    r.add_argument("--eval-final-only", dest="eval_every", action="store_const", const=0,
                   help="evaluate only after the last experience (same as --eval-every 0)")
    c = sub.add_parser("compare", help="markdown table across finished runs")
    c.add_argument("dirs", nargs="+", help="run folders or results.json files")
    c.add_argument("--output", help="also write the table to this file")
    m = sub.add_parser("methods", help="list the registered methods, one line each")
    m.add_argument("--options", metavar="NAME", help="every option of method NAME, its default and its meaning")
    m.add_argument("--causal-lm", dest="causal_lm", action="store_true",
                   help="the methods that run on a causal LM (generation, or its frozen features)")
    from cl_prompts.inference.commands import add_commands

    add_commands(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Build the RunConfig; on ``--resume`` start from the run's saved config."""
    given = {f: getattr(args, f) for f in _RUN_FIELDS if getattr(args, f) is not None}
    options = parse_set(args.set)
    if args.lr is not None:
        options["lr"] = args.lr
    if args.resume and args.config:
        raise ValueError("--resume and --config exclude each other: a resume reads its options "
                         "from the checkpoint")
    if args.resume:
        from cl_prompts.run.checkpoints import read_run_config

        if given.get("overwrite"):
            raise ValueError("--resume and --overwrite exclude each other: --resume continues the run "
                             "in DIR, --overwrite replaces it; pick one")
        if "out" in given and given["out"] != args.resume:
            raise ValueError(f"--out {given['out']} and --resume {args.resume} name different folders")
        saved = read_run_config(args.resume)
        base = {k: v for k, v in saved.items() if k in {f.name for f in dataclasses.fields(RunConfig)}}
        base["method_options"] = {**base.get("method_options", {}), **options}
        base.update(given)
        base.update(out=args.resume, resume=True, overwrite=False, progress=args.progress,
                    plots=args.plots)
        return RunConfig(**base)
    if args.config:
        from cl_prompts.run.config import read_config_file

        base = read_config_file(args.config)
        options = {**base.pop("method_options", {}), **options}
        # --no-plots / --no-progress turn off what the file turns on, never the other way
        for flag in ("progress", "plots"):
            setattr(args, flag, bool(base.pop(flag, True)) and getattr(args, flag))
        given = {**base, **given}
    return RunConfig(**given, method_options=options, progress=args.progress, plots=args.plots)


def configs_from_args(args: argparse.Namespace) -> list[RunConfig]:
    """One RunConfig, or one per ``--seeds`` value (each in its own folder)."""
    if not args.seeds:
        return [config_from_args(args)]
    if args.seed is not None or args.resume:
        raise ValueError("--seeds excludes --seed and --resume (resume each seed's folder on its own)")
    if len(set(args.seeds)) != len(args.seeds):
        raise ValueError(f"--seeds repeats a seed: {args.seeds}")
    out, configs = args.out, []
    for seed in args.seeds:
        args.seed, args.out = seed, None if out is None else str(Path(out) / f"seed{seed}")
        configs.append(config_from_args(args))
    args.seed, args.out = None, out
    return configs


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cl-prompts``; returns the exit status (2 for bad input)."""
    args = _parser().parse_args(argv)  # --help and --version exit here, before torch is imported
    if args.command == "run" and args.backbone:  # offline, a hub id fails here, not after torch and retries
        from cl_prompts.hub import unavailable_hub_id

        message = unavailable_hub_id(args.backbone)
        if message:
            print(f"cl-prompts: error: {message}", file=sys.stderr)
            return 2
    from cl_prompts.random_state import thread_independent_math

    thread_independent_math()  # before any matrix product (the runner's call may come too late)
    folders: list[str] = []
    try:
        if args.command == "methods":
            from cl_prompts.methods.registry import describe_method, describe_options, list_methods

            if args.options:
                print(describe_options(args.options, args.causal_lm), end="")
                return 0
            names = list_methods(args.causal_lm)
            width = max(map(len, names))
            print("\n".join(f"{n:<{width}}  {describe_method(n, args.causal_lm)}" for n in names))
            if not args.causal_lm:
                print("\non a causal LM (--backbone smollm2): cl-prompts methods --causal-lm")
        elif args.command in ("predict", "calibrate"):
            from cl_prompts.inference import commands

            getattr(commands, f"{args.command}_command")(args)
        elif args.command == "compare":
            from cl_prompts.files import atomic_write_text
            from cl_prompts.results import compare_dirs
            from cl_prompts.safe_io import refuse_symlink

            if args.output:  # a planted link would make us overwrite its target
                refuse_symlink(args.output, "--output")
            table = compare_dirs(args.dirs)
            print(table, end="")
            if args.output:
                atomic_write_text(args.output, table)
        else:
            from cl_prompts.run import run

            main_process = os.environ.get("RANK", "0") == "0"  # under a launcher, rank 0 alone reports
            for config in configs_from_args(args):
                results = run(config)
                if not config.progress and main_process:  # the summary (with the paths) was not printed
                    print(f"results: {config.run_dir(results['benchmark']) / 'results.json'}")
                folders.append(str(config.run_dir(results["benchmark"])))
            if args.seeds and main_process:
                from cl_prompts.results import compare_dirs

                print(compare_dirs(folders), end="")
    except (ValueError, TypeError, OSError, FloatingPointError, ImportError, RecursionError) as exc:
        # Bad input, a diverged run, a full disk, a missing extra: one clear line, no traceback; the last
        # checkpoint and any earlier results are kept. Messages may quote a file's contents: one line,
        # control characters escaped.
        from cl_prompts.safe_io import printable

        print(f"cl-prompts: error: {printable(' '.join(str(exc).splitlines()))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cl-prompts: interrupted; the last checkpoint is kept (continue with "
              "cl-prompts run --resume OUT)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
