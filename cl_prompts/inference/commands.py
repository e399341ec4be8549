"""``cl-prompts predict`` and ``cl-prompts calibrate``: a run folder answers for new texts."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cl_prompts.files import atomic_write_text
from cl_prompts.inference.defaults import (
    CALIBRATION_FILE,
    DEFAULT_FALSE_REJECTION,
    DEFAULT_SCORE,
    FALLBACK_SCORE,
    SCORES,
)
from cl_prompts.safe_io import check_regular, csv_cell, printable, read_text

if TYPE_CHECKING:
    from cl_prompts.inference.predictor import Prediction

OUTPUT_SUFFIXES = (".csv", ".jsonl")


def add_commands(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    """Register ``predict`` and ``calibrate`` on the ``cl-prompts`` subparsers."""
    p = sub.add_parser("predict", help="label texts with a trained run (top-k intents, out-of-scope flag)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (finished, or stopped after any experience)")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to label")
    p.add_argument("--file", help="a .csv/.tsv/.json/.jsonl file of texts (column --text-column) or a .txt, one per line")
    p.add_argument("--text-column", dest="text_column", default="text", help="text column of --file (default text)")
    p.add_argument("--out", help="write the predictions to this .csv or .jsonl file (a new file)")
    p.add_argument("--top-k", dest="top_k", type=int, default=3, help="classes per text (default 3)")
    p.add_argument("--generate", type=int, metavar="N", default=0,
                   help="causal LM runs: also print what the model says (greedy, at most N tokens) under "
                        "the prompts it predicts with")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    add_trust_flag(p)
    c = sub.add_parser("calibrate", help="fit a run's out-of-scope threshold on in-scope labelled texts")
    c.add_argument("run_dir", metavar="RUN_DIR")
    c.add_argument("--file", required=True, help="in-scope validation texts with labels, never trained on")
    c.add_argument("--text-column", dest="text_column", default="text")
    c.add_argument("--label-column", dest="label_column", default="label")
    c.add_argument("--false-rejection", dest="false_rejection", type=float, default=DEFAULT_FALSE_REJECTION,
                   help=f"share of in-scope texts rejected at the threshold (default {DEFAULT_FALSE_REJECTION})")
    c.add_argument("--score", choices=SCORES, help=f"out-of-scope score (default {DEFAULT_SCORE} where the "
                   f"method keeps class means, else {FALLBACK_SCORE})")
    c.add_argument("--overwrite", action="store_true", help=f"replace the run's {CALIBRATION_FILE}")
    c.add_argument("--device", default="cpu")
    add_trust_flag(c)


def add_trust_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-remote-code", dest="trust_remote_code", action="store_true", default=None,
                        help="let transformers run Python code shipped with the backbone model (only for "
                             "models you trust; without it such a model is refused)")


def read_texts(path: str | Path, text_column: str) -> list[str]:
    """Texts of a ``.txt`` (one per non-empty line) or of a column of a table file."""
    from cl_prompts.data.text_file import read_delimited_rows, read_json_rows

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"--file not found: {p}")
    check_regular(p, "--file")  # a FIFO would hang, /dev/zero fill the memory
    suffix = p.suffix.lower()
    if suffix == ".txt":
        texts = [line.strip() for line in read_text(p, "--file").splitlines() if line.strip()]
    elif suffix in (".csv", ".tsv", ".json", ".jsonl"):
        rows = read_delimited_rows(p, suffix)[0] if suffix in (".csv", ".tsv") else read_json_rows(p, suffix)
        missing = [i for i, r in enumerate(rows) if not isinstance(r.get(text_column), str)]
        if rows and len(missing) == len(rows):
            raise ValueError(f"{p}: no column {text_column!r}; choose the text column with --text-column")
        if missing:
            raise ValueError(f"{p}: row {missing[0]} has no text in column {text_column!r}")
        texts = [r[text_column] for r in rows]
    else:
        raise ValueError(f"--file must be .txt, .csv, .tsv, .json or .jsonl, got {p.name!r}")
    if not texts:
        raise ValueError(f"{p}: no texts in the file")
    return texts


def _line(p: Prediction) -> str:
    # class names come from the saved folder: a newline or an ANSI escape in one must not forge output
    best = ", ".join(f"{printable(n)} {pr:.2f}" for n, pr in zip(p.labels, p.probabilities, strict=True))
    verdict = {True: "OUT OF SCOPE", False: "in scope", None: "not calibrated"}[p.out_of_scope]
    routed = "" if p.experience is None else f"; experience {p.experience}, prompts {p.prompt_ids}"
    return f"{p.text!r}: {verdict} (score {p.score:.3f}); {best}{routed}"


def write_predictions(predictions: list[Prediction], path: Path) -> None:
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"--out must end with {' or '.join(OUTPUT_SUFFIXES)}, got {path.name!r}")
    if os.path.lexists(path):
        raise FileExistsError(f"--out {path} exists: choose a new file (nothing is overwritten)")
    rows = [p.to_dict() for p in predictions]
    if path.suffix.lower() == ".jsonl":
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return
    lines: list[list[str]] = [list(rows[0])]
    for r in rows:  # list fields joined with "|" so that a spreadsheet shows one cell each
        cells = ["|".join(map(str, v)) if isinstance(v, list) else "" if v is None else str(v) for v in r.values()]
        # texts and class names never start a formula (=, +, -, @) in a spreadsheet
        lines.append([csv_cell(c) if k in ("text", "labels") else c for k, c in zip(r, cells, strict=True)])
    buf = io.StringIO()
    csv.writer(buf).writerows(lines)
    atomic_write_text(path, buf.getvalue())


def predict_command(args: argparse.Namespace) -> None:
    from cl_prompts.inference.predictor import Predictor

    texts = list(args.texts) + (read_texts(args.file, args.text_column) if args.file else [])
    if not texts:
        raise ValueError("give texts to label: TEXT arguments or --file")
    predictor = Predictor.from_run(args.run_dir, device=args.device, trust_remote_code=bool(args.trust_remote_code))
    predictions = predictor.predict(texts, top_k=args.top_k)
    if args.out:
        write_predictions(predictions, Path(args.out))
        print(f"{len(predictions)} predictions: {args.out}")
    else:
        print("\n".join(_line(p) for p in predictions))
    if args.generate:
        if not getattr(predictor.model, "generative", False):
            raise ValueError(f"--generate needs a run of a method that answers by generation on a causal LM; "
                             f"{predictor.model.name} reads features")
        said = predictor.model.generate(texts, max_new_tokens=args.generate)
        print("\n".join(f"{t!r} -> the model says {s!r}" for t, s in zip(texts, said, strict=True)))
    if predictor.calibration is None:
        print(f"(no out-of-scope threshold: fit one with cl-prompts calibrate {args.run_dir} --file VAL.csv)")


def calibrate_command(args: argparse.Namespace) -> None:
    from cl_prompts.data.text_file import read_rows
    from cl_prompts.inference.predictor import Predictor

    target = Path(args.run_dir) / CALIBRATION_FILE
    if os.path.lexists(target) and not args.overwrite:
        raise FileExistsError(f"{target} exists: pass --overwrite to replace it")
    texts, labels = read_rows(args.file, args.text_column, args.label_column)
    predictor = Predictor.from_run(args.run_dir, device=args.device, trust_remote_code=bool(args.trust_remote_code))
    cal = predictor.calibrate(texts, labels, score=args.score, false_rejection=args.false_rejection,
                              source=f"{Path(args.file).name}: {len(texts)} in-scope texts")
    atomic_write_text(target, json.dumps(cal.to_dict(), indent=2))
    print(f"threshold {cal.threshold:.4f} ({cal.score}, {cal.false_rejection:.0%} of {len(texts)} in-scope "
          f"texts rejected), temperature {cal.temperature:.4g}: {target}")
