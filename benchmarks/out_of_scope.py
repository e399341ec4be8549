"""Out-of-scope rejection on CLINC150: finished runs against its 1,000 out-of-scope test sentences.

    python benchmarks/out_of_scope.py benchmarks/results/headline/runs/*     # the headline runs
    python benchmarks/out_of_scope.py runs/clinc150-growing_pool-seed0 --out oos.json

For each CLINC150 run folder with a checkpoint (its latest model):

1. choose the score: each of ``cl_prompts.inference.SCORES`` (``max_logit+similarity`` with
   the similarity weights ``SIMILARITY_WEIGHTS``, for methods that keep class means) is
   measured on validation data only (AUROC of CLINC150's 3,000 in-scope ``val`` sentences
   against its 100 ``oos_val``); the best one is chosen;
2. calibrate on the in-scope ``val`` alone: the temperature, and the threshold that rejects
   ``--false-rejection`` (default 5%) of it;
3. report on test: AUROC of the 4,500 in-scope ``test`` sentences against the 1,000
   ``oos_test``, and the in-scope and out-of-scope recall at that threshold.

Test data is read only in step 3. Writes every figure to ``--out`` (JSON) and prints a
markdown table per method (mean ± std over the seeds found).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from provenance import provenance, write_json

from cl_prompts.data import load_clinc150, load_clinc150_out_of_scope
from cl_prompts.inference import (
    LOGIT_SCORES,
    Calibration,
    Predictor,
    auroc,
    calibrate,
    rejection_report,
)
from cl_prompts.inference.defaults import COMBINED_SCORE, DEFAULT_SIMILARITY_WEIGHT
from cl_prompts.random_state import thread_independent_math
from cl_prompts.results import RESULTS_FILE, read_results
from cl_prompts.run.checkpoints import has_checkpoint

# Weights of the class similarity in max_logit+similarity tried on val.
SIMILARITY_WEIGHTS = (0.5, 1.0, 2.0)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="CLINC150 run folders (others are skipped with a note)")
    p.add_argument("--out", default="benchmarks/results/out_of_scope.json")
    p.add_argument("--false-rejection", dest="false_rejection", type=float, default=0.05)
    p.add_argument("--data-root", dest="data_root", help="folder holding clinc150/ (default as the runner)")
    p.add_argument("--device", default="cpu")
    return p.parse_args(argv)


def clinc_splits(data_root: str | None) -> dict[str, tuple[list[str], list[int] | None]]:
    """val / oos_val / test / oos_test texts (and in-scope labels)."""
    root = None if data_root is None else Path(data_root) / "clinc150"
    ds = load_clinc150(root)  # test as the evaluation split, val held out for calibration
    return {
        "val": (ds.calibration.texts, ds.calibration.labels),
        "oos_val": (load_clinc150_out_of_scope(root, "val"), None),
        "test": (ds.test.texts, ds.test.labels),
        "oos_test": (load_clinc150_out_of_scope(root, "test"), None),
        "class_names": (ds.class_names, None),
    }


def candidate_scores(has_similarity: bool) -> list[tuple[str, str, float]]:
    """(name, score, similarity weight) of every score tried on val."""
    out = [(score, score, DEFAULT_SIMILARITY_WEIGHT) for score in LOGIT_SCORES]
    if has_similarity:
        out += [(f"{COMBINED_SCORE}(w={w:g})", COMBINED_SCORE, w) for w in SIMILARITY_WEIGHTS]
    return out


def evaluate_run(folder: Path, splits: dict, false_rejection: float, device: str) -> dict:
    """Every score on val (choice) and test (report) for one run."""
    import torch

    predictor = Predictor.from_run(folder, device=device)
    if predictor.model.class_names is None:  # saved before models kept their class names
        predictor.class_names = list(splits["class_names"][0])
    start = time.perf_counter()
    out = {name: predictor.logits_and_similarity(splits[name][0]) for name in ("val", "oos_val")}
    y_val = torch.tensor(splits["val"][1])
    per_score = {}
    for name, score, weight in candidate_scores(out["val"][1] is not None):
        cal = calibrate(out["val"][0], y_val, score, false_rejection, "clinc150 val", out["val"][1], weight)
        s_in, s_out = (cal.scores(*out[n]).numpy() for n in ("val", "oos_val"))
        per_score[name] = {"val_auroc": auroc(s_in, s_out), "calibration": cal.to_dict()}
    chosen = max(per_score, key=lambda s: per_score[s]["val_auroc"])
    # test is read from here on, after the choice
    out.update({name: predictor.logits_and_similarity(splits[name][0]) for name in ("test", "oos_test")})
    for entry in per_score.values():
        cal = Calibration.from_dict(entry["calibration"])
        entry["test"] = rejection_report(cal.scores(*out["test"]).numpy(), cal.scores(*out["oos_test"]).numpy(),
                                         cal.threshold)
    y_test = torch.tensor(splits["test"][1])
    results = read_results(folder)
    return {
        "run": str(folder), "method": results["method"], "seed": results["seed"],
        "final_average_accuracy": results["final_average_accuracy"],
        "in_scope_test_accuracy": float((out["test"][0].argmax(1) == y_test).double().mean() * 100),
        "chosen_score": chosen, "scores": per_score,
        "seconds": round(time.perf_counter() - start, 1),
    }


def table(entries: list[dict]) -> str:
    """Markdown: one row per method, the chosen score's test figures, mean ± std over seeds."""
    by_method = defaultdict(list)
    for e in entries:
        by_method[e["method"]].append(e)
    lines = ["| method | seeds | score (chosen on val) | val AUROC | test AUROC | in-scope recall | "
             "out-of-scope recall |", "|---|---|---|---|---|---|---|"]

    def ms(values: list[float], digits: int) -> str:
        return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}" if len(values) > 1 else f"{values[0]:.{digits}f}"

    rows = []
    for method, runs in by_method.items():
        picks = [r["scores"][r["chosen_score"]] for r in runs]
        chosen = sorted({r["chosen_score"] for r in runs})
        test_auroc = [p["test"]["auroc"] for p in picks]
        rows.append((np.mean(test_auroc), f"| {method} | {','.join(str(r['seed']) for r in runs)} | "
                     f"{'/'.join(chosen)} | {ms([p['val_auroc'] for p in picks], 3)} | {ms(test_auroc, 3)} | "
                     f"{ms([p['test']['in_scope_recall'] for p in picks], 3)} | "
                     f"{ms([p['test']['out_of_scope_recall'] for p in picks], 3)} |"))
    return "\n".join(lines + [r for _, r in sorted(rows, key=lambda x: -x[0])]) + "\n"


def main(argv=None) -> int:
    thread_independent_math()  # before any matrix product: the same bits as `cl-prompts run`
    args = parse_args(argv)
    splits = clinc_splits(args.data_root)
    entries = []
    for folder in map(Path, args.runs):
        if not (folder / RESULTS_FILE).is_file() or not has_checkpoint(folder):
            print(f"skip {folder}: no finished results with a checkpoint", file=sys.stderr)
            continue
        config = read_results(folder)["config"]
        if config.get("benchmark") != "clinc150" or config.get("quick") or config.get("experiences"):
            print(f"skip {folder}: not a full CLINC150 run", file=sys.stderr)
            continue
        try:
            entry = evaluate_run(folder, splits, args.false_rejection, args.device)
        except ValueError as exc:  # e.g. a checkpoint of an older format: rerun that run
            print(f"skip {folder}: {exc}", file=sys.stderr)
            continue
        pick = entry["scores"][entry["chosen_score"]]
        print(f"{entry['method']} seed {entry['seed']}: {entry['chosen_score']} val AUROC {pick['val_auroc']:.3f}, "
              f"test AUROC {pick['test']['auroc']:.3f}, out-of-scope recall {pick['test']['out_of_scope_recall']:.3f} "
              f"({entry['seconds']} s)", flush=True)
        entries.append(entry)
    if not entries:
        print("no CLINC150 run with a checkpoint among the folders given", file=sys.stderr)
        return 2
    md = table(entries)
    write_json(args.out, {**provenance("out_of_scope", argv, device=args.device),
                          "false_rejection": args.false_rejection, "runs": entries, "table": md}, indent=2)
    print(md, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
