"""The headline table: every method and baseline on a text benchmark, several seeds.

    python benchmarks/headline.py                      # CLINC150-10, all methods, seeds 0 1 2, CPU
    python benchmarks/headline.py --benchmark hwu64 --out benchmarks/results/headline-hwu64
    python benchmarks/headline.py --device cuda        # same on a GPU
    python benchmarks/headline.py --quick --methods ncm growing_pool --seeds 0
    python benchmarks/headline.py --methods l2p dualprompt coda_prompt --preset paper   # the papers' settings
    python benchmarks/headline.py --benchmark hwu64 --backbone smollm2 --methods zero_shot growing_pool \
        --train-per-class 20 --test-per-class 5 --batch-size 16 --out benchmarks/results/llm-hwu64-fs20

Benchmarks: ``clinc150`` and ``hwu64`` (benchmarks/suites.py) or ``file:PATH``. The
validation accuracy that chose each method's settings is read from the tuning results
(``--tune``, benchmarks/tune.py) and listed under the table.

Each run goes to ``<out>/runs/<method>-seed<S>/`` (results.json, plots, checkpoint). A run
whose results.json exists is reused; one with only a checkpoint is resumed; so the
script can be stopped and started again. A finished run is reused only when it was made
with today's method config (every field, defaults included) and cl_prompts version;
otherwise the script stops and names the difference (``--reuse-stale`` reuses it anyway,
``--rerun-stale`` runs it again). At the end ``<out>/headline.md`` holds the
markdown table (mean ± std over seeds) and ``<out>/headline.json`` the numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from provenance import provenance, write_json
from suites import SUITES, suite_options

from cl_prompts.choices import POOLINGS
from cl_prompts.cli import query_layer_arg
from cl_prompts.data import load_benchmark
from cl_prompts.random_state import thread_independent_math
from cl_prompts.results import RESULTS_FILE, compare_table, read_results, strip_timings
from cl_prompts.run import RunConfig, run
from cl_prompts.run.checkpoints import has_checkpoint
from cl_prompts.run.config import predated_options

FORGETTING = (
    "Forgetting: for each old experience, its best accuracy after any earlier training "
    "step minus its final accuracy, averaged over the old experiences (points). "
    "BWT: final minus just-trained accuracy, averaged (negative = forgetting)."
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", help="default: every registered method")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--quick", action="store_true", help="the --quick subset of every run")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--benchmark", default="clinc150", help=f"one of {list(SUITES)} or file:PATH")
    p.add_argument("--data-root", help="folder with clinc150/ and hwu64/")
    p.add_argument("--experiences", type=int,
                   help="split the classes into N experiences (default: the benchmark's own, e.g. CLINC150's 10 domains)")
    p.add_argument("--tune", nargs="*", default=sorted(str(p) for p in Path("benchmarks/results").glob("tune*/tune.json")),
                   help="tune.json files of benchmarks/tune.py (default: benchmarks/results/tune*/tune.json)")
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--query-encoder", help="causal LMs: the query from this sentence encoder (e.g. minilm)")
    p.add_argument("--pooling", default="auto", choices=POOLINGS,
                   help="the backbone's pooling (default auto: the model's own; see cl-prompts run --pooling)")
    p.add_argument("--query-layer", default="auto", type=query_layer_arg,
                   help="causal LMs: the query's last hidden state (default auto: middle; see cl-prompts run)")
    p.add_argument("--set", dest="set", action="append", default=[], metavar="KEY=VALUE",
                   help="a method config option for every run (repeatable; see cl-prompts run --set)")
    p.add_argument("--preset", help="run each method from this preset of its config (e.g. paper: "
                                    "the paper's published configuration) instead of its defaults; "
                                    "runs go to <method>-<preset>-seed<S>, methods without it are refused")
    stale = p.add_mutually_exclusive_group()
    stale.add_argument("--reuse-stale", action="store_true",
                       help="reuse finished runs made with another method config or cl_prompts version")
    stale.add_argument("--rerun-stale", action="store_true",
                       help="run again (overwriting) the finished runs made with another method config or version")
    p.add_argument("--train-per-class", type=int, help="few-shot: N training samples per class (seed 0)")
    p.add_argument("--test-per-class", type=int, help="N test samples per class (seed 0)")
    p.add_argument("--batch-size", type=int, default=RunConfig.batch_size)
    p.add_argument("--eval-every", type=int, default=1, help="0: evaluate after the last experience only")
    p.add_argument("--eval-subsample", type=int, metavar="N",
                   help="evaluations before the last score N test samples per class (forgetting on those)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=True)
    p.add_argument("--no-plots", dest="plots", action="store_false", default=True)
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false", default=True,
                   help="skip the out-of-scope calibration after the last experience (CLINC150)")
    return p.parse_args(argv)


def main(argv=None) -> Path:
    thread_independent_math()  # before any matrix product: the same bits as `cl-prompts run`
    args = parse_args(argv)
    from cl_prompts.backbones import names_causal_lm
    from cl_prompts.methods import list_methods
    from cl_prompts.run.runner import load_run_backbone

    causal = bool(names_causal_lm(args.backbone))  # the methods of a causal LM (cl_prompts.methods.generative)
    methods = args.methods or list_methods(causal)
    unknown = sorted(set(methods) - set(list_methods(causal)))
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; valid: {list_methods(causal)}")
    if args.preset:
        from cl_prompts.methods import get_method_class

        missing = [m for m in methods if args.preset not in get_method_class(m, causal).config_class.PRESETS]
        if missing:
            raise SystemExit(f"method(s) {missing} have no preset {args.preset!r}")
    from cl_prompts.cli import parse_set

    options = {**({"preset": args.preset} if args.preset else {}), **parse_set(args.set)}
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    bench = suite_options(args.benchmark, args.data_root) if args.benchmark in SUITES else {"benchmark": args.benchmark}
    if args.experiences is not None:
        bench["experiences"] = args.experiences
    base = RunConfig(**bench, backbone=args.backbone, epochs=args.epochs, device=args.device, quick=args.quick,
                     train_per_class=args.train_per_class, test_per_class=args.test_per_class,
                     batch_size=args.batch_size, eval_every=args.eval_every, eval_subsample=args.eval_subsample,
                     query_encoder=args.query_encoder, pooling=args.pooling, query_layer=args.query_layer,
                     calibrate=args.calibrate)
    dataset = load_benchmark(base)  # loaded once, shared by every run
    backbone = load_run_backbone(base)
    started = time.perf_counter()
    results = []
    for method in methods:
        for seed in args.seeds:
            name = f"{method}-{args.preset}" if args.preset else method
            run_dir = out / "runs" / f"{name}-seed{seed}{'-quick' if args.quick else ''}"
            if (run_dir / RESULTS_FILE).is_file():
                earlier = read_results(run_dir)
                why = stale_reasons(earlier, method, options, causal) + run_differences(earlier, base)
                if not why or args.reuse_stale:
                    print(f"[headline] reuse {run_dir}" + (f" (stale: {'; '.join(why)})" if why else ""))
                    results.append(earlier)
                    continue
                if not args.rerun_stale:
                    raise SystemExit(f"{run_dir} was made with other code or settings: {'; '.join(why)}. "
                                     f"Pass --rerun-stale to run it again or --reuse-stale to keep it")
            resume = has_checkpoint(run_dir) and not (run_dir / RESULTS_FILE).is_file()
            print(f"[headline] {'resume' if resume else 'run'} {method} seed {seed} -> {run_dir}")
            # Every run starts with an empty query cache so its train time is comparable.
            backbone.clear_query_cache()
            cfg = RunConfig(**{**vars(base), "method": method, "seed": seed, "out": str(run_dir),
                               "resume": resume, "overwrite": not resume and run_dir.exists(),
                               "progress": args.progress, "plots": args.plots,
                               "method_options": dict(options)})
            results.append(run(cfg, backbone=backbone, dataset=dataset))
    # The table covers every run in the folder, so invocations with different method and
    # seed sets (e.g. 3 seeds for the fast methods, 1 for the slow ones) build one table.
    ran = {json.dumps(strip_timings(r), sort_keys=True, default=str) for r in results}
    for path in sorted((out / "runs").glob(f"*/{RESULTS_FILE}")):
        if path.parent.name.endswith("-quick") != args.quick:
            continue
        earlier = read_results(path.parent)
        key = json.dumps(strip_timings(earlier), sort_keys=True, default=str)
        why = stale_reasons(earlier, earlier["method"], earlier["config"].get("method_options") or {}, causal)
        if key not in ran and why and not args.reuse_stale:
            print(f"[headline] left out of the table, made with other code or settings: {path.parent} ({'; '.join(why)})")
            continue
        if key not in ran and earlier["benchmark"] == results[0]["benchmark"]:
            results.append(earlier)
            ran.add(key)
    results.sort(key=lambda r: (r["method"], r["seed"]))
    table = compare_table(results)
    header = (
        f"# Headline: {results[0]['benchmark']}{' (--quick subset)' if args.quick else ''}, "
        f"backbone {results[0]['backbone']}, device {args.device} (seeds per row)\n\n"
    )
    note = (f"\nFinal average accuracy: mean over the experiences of the accuracy after the last "
            f"one (%). {FORGETTING} Train time: seconds, summed over experiences, "
            f"{platform.processor() or platform.machine()}, device {args.device}.\n")
    subsampled = sorted({f"{r['method']} (N={r['eval_subsample']['per_class']})" for r in results if r.get("eval_subsample")})
    if subsampled:
        note += (f"Evaluated on N test samples per class before the last experience, on all of them after it: "
                 f"{', '.join(subsampled)}; their forgetting and BWT compare those N at every row.\n")
    note += validation_table(args.tune, sorted({r["method"] for r in results}), args.benchmark, args.backbone, causal)
    (out / "headline.md").write_text(header + table + note, encoding="utf-8")
    doc = {
        **provenance("headline", argv, device=args.device),
        "wall_seconds": time.perf_counter() - started,
        "table_markdown": table,
        "runs": [{**strip_timings(r), "train_seconds": r["train_seconds"],
                  "eval_seconds": r["eval_seconds"]} for r in results],
    }
    write_json(out / "headline.json", doc)
    print(header + table + note)
    return out / "headline.md"


def validation_table(tune_files: list[str], methods: list[str], benchmark: str, backbone: str = "minilm",
                     causal: bool = False) -> str:
    """Markdown: the settings each method runs with, and the validation accuracy that chose them;
    only the tunings made on ``backbone`` count (a tune.json without a ``setting`` was made on
    MiniLM: a causal LM's methods share names with the encoder ones, not their configs)."""
    entries: dict[str, list[dict]] = {}
    for f in tune_files:
        doc = json.loads(Path(f).read_text())
        if doc.get("setting", {}).get("backbone", "minilm") != backbone:
            continue
        for m, c in doc.get("chosen", {}).items():
            entries.setdefault(m, []).append(c)
    # Several tunings of one method: the one whose choice is the method's current default.
    chosen = {m: c for m, cs in entries.items() for c in cs[::-1] if matches_defaults(m, c["options"], causal)}
    rows = ["", "Settings chosen on validation data (benchmarks/tune.py or choose_from_runs.py; mean over "
            "the tuning benchmarks, and this benchmark's own validation accuracy):", "",
            "| method | chosen options | mean val acc (%) | val acc here (%) |", "|---|---|---|---|"]
    for m in methods:
        if m not in chosen:
            why = "no tuning chose its current defaults" if m in entries else "not tuned: defaults as documented"
            rows.append(f"| {m} | {why} | - | - |")
            continue
        c = chosen[m]
        here = c["val_accuracy"].get(benchmark)
        seeds = c.get("seeds", [0])
        over = f" (seeds {' '.join(map(str, seeds))})" if len(seeds) > 1 else ""
        rows.append(f"| {m} | `{json.dumps(c['options'])}` | {c['mean_val_accuracy']:.2f}{over} | "
                    f"{'-' if here is None else f'{here:.2f}'} |")
    return "\n".join(rows) + "\n"


def stale_reasons(results: dict, method: str, options: dict, causal: bool = False) -> list[str]:
    """How a finished run differs from what ``method`` with ``options`` would run today (on a
    causal LM: its variant there): its method config (every field; an option the run predates
    counts only when today's value is not its default) and the cl_prompts version; [] when it
    matches."""
    from cl_prompts.methods import get_method_class
    from cl_prompts.methods.config import make_config
    from cl_prompts.results.record import versions

    config_class = get_method_class(method, causal).config_class
    today = json.loads(json.dumps(make_config(config_class, method, options).to_dict()))
    saved = results.get("method_config")
    if saved is None:
        return ["its results.json records no method_config"]
    # an option added after the run, at the default that does what the code did before, is no change
    defaults = json.loads(json.dumps(config_class().to_dict()))
    why = [f"{k}={saved.get(k, '(absent)')!r}, today {v!r}" for k, v in today.items()
           if saved.get(k, "(absent)") != v and not (k not in saved and v == defaults.get(k))]
    why += [f"option {k!r} no longer exists" for k in sorted(set(saved) - set(today))]
    ran, now = results.get("versions", {}).get("cl_prompts"), versions()["cl_prompts"]
    if ran != now:
        why.append(f"cl_prompts {ran}, today {now}")
    return why


# RunConfig fields that change a run's figures besides its method config
RESULT_FIELDS = ("backbone", "query_encoder", "instruction", "pooling", "query_layer", "experiences", "epochs",
                 "batch_size", "max_length", "train_per_class", "test_per_class", "eval_split", "precision")


def run_differences(results: dict, base: Any) -> list[str]:
    """The ``RESULT_FIELDS`` where a finished run's config differs from ``base`` (a RunConfig);
    a field the run predates counts as what the code did before it existed
    (``predated_options``: a causal LM's query pooled by "mean" over its last blocks, else
    the field's default)."""
    saved = {**vars(RunConfig()), **predated_options(results.get("config", {})), **results.get("config", {})}
    return [f"{k}={saved[k]!r}, today {getattr(base, k)!r}" for k in RESULT_FIELDS if saved[k] != getattr(base, k)]


def matches_defaults(method: str, options: dict, causal: bool = False) -> bool:
    """Whether every option of a tuning's choice equals the default of ``method``'s config (on a
    causal LM: of its variant there)."""
    from cl_prompts.methods import get_method_class

    defaults = get_method_class(method, causal).config_class()
    return all(getattr(defaults, k, None) == v for k, v in options.items())


if __name__ == "__main__":
    main()
