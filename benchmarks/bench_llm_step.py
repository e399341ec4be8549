"""A causal LM's training step and answer scoring against their floors (SmolLM2 by default).

The same batch of HWU64 sentences (``--batch-size``, templated as the runs do) with a
``--prompt-length`` soft prompt in front, timed as:

- ``floor_forward``: the prompted decoder's forward alone (no LM head, no gradient): what
  scoring cannot go below;
- ``scoring``: ``answer_log_likelihood`` of ``--answers`` candidate answers (one pass over
  the input, one over all answers against its key/value cache, the LM head at answer
  positions only);
- ``scoring_full_passes``: the same scores by one full pass of ``[prompt, input, answer]``
  per (input, answer) pair, what the key/value cache saves;
- ``floor_train``: the prompted decoder's forward + backward to the prompt over the input
  and its answer (a sum of the hidden states as the loss; no LM head);
- ``train_answer``: ``answer_loss`` forward + backward + Adam step (the default training step);
- ``train_rank``: the same with the ranking loss (``rank_weight``: every candidate answer
  scored with gradient).

Each ``--repeats`` times, interleaved (this machine is shared); the median samples/s and
the ratio to the floor go to ``--out``. The floors run every row whole; the scoring and
training cases run the template's head once for the batch (``CausalLMConfig.share_head``),
or whole with ``--whole-passes``.

    python benchmarks/bench_llm_step.py      # SmolLM2-135M, batch 16, 20-token prompt, 8 answers
    python benchmarks/bench_llm_step.py --whole-passes --out benchmarks/results/llm_step_whole.json
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch
from provenance import provenance, write_json
from suites import suite_options

from cl_prompts.backbones import PromptedCausalLM, load_backbone
from cl_prompts.backbones.causal_scoring import answer_token_log_probs
from cl_prompts.data import load_benchmark
from cl_prompts.methods.generative import readable_label
from cl_prompts.random_state import thread_independent_math
from cl_prompts.run import RunConfig

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="smollm2")
    p.add_argument("--benchmark", default="hwu64")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--prompt-length", type=int, default=20)
    p.add_argument("--answers", type=int, default=8, help="candidate answers scored per input")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--whole-passes", action="store_true", help="share_head=False: every row runs whole")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/llm_step.json")
    return p.parse_args(argv)


def timed(fn, samples: int) -> float:
    start = time.perf_counter()
    fn()
    return samples / (time.perf_counter() - start)


def main(argv=None) -> dict:
    args = parse_args(argv)
    thread_independent_math()
    torch.manual_seed(0)
    lm = load_backbone(name_or_path=args.backbone)
    if args.whole_passes:
        lm = PromptedCausalLM(lm.model, dataclasses.replace(lm.config, share_head=False), lm.tokenizer)
    data = load_benchmark(RunConfig(**suite_options(args.benchmark)))
    rows = torch.randperm(len(data.train.texts), generator=torch.Generator().manual_seed(0))[: args.batch_size]
    texts, labels = [data.train.texts[i] for i in rows], [data.train.labels[i] for i in rows]
    names = [readable_label(n) for n in data.class_names]
    answers = sorted({names[y] for y in labels})
    answers = (answers + [n for n in names if n not in answers])[: args.answers]  # the batch's own answers first
    x = lm.tokenize(texts)
    own = lm.tokenize_answers([names[y] for y in labels])  # (B, La)
    cands = lm.tokenize_answers(answers)  # (A, La)
    prompt = torch.nn.Parameter(torch.randn(1, args.prompt_length, lm.hidden_size) * 0.02)
    opt = torch.optim.Adam([prompt], lr=1e-3)
    b, a = args.batch_size, len(answers)
    # a target outside the candidates counts as the first: the timing does not depend on it
    target = torch.tensor([answers.index(names[y]) if names[y] in answers else 0 for y in labels])

    @torch.no_grad()
    def floor_forward():
        embeds, mask = lm.prompted_embeddings(x, prompt)
        lm.run_decoder(embeds, mask)

    @torch.no_grad()
    def scoring():
        lm.answer_log_likelihood(x, prompt, cands)

    @torch.no_grad()
    def scoring_full_passes():
        rows = torch.arange(b).repeat_interleave(a)
        xs = {k: v[rows] for k, v in x.items()}
        for start in range(0, b * a, b):  # batches of B rows, as a per-pair loop would run them
            part = slice(start, start + b)
            answer_token_log_probs(lm, {k: v[part] for k, v in xs.items()}, prompt,
                                   cands["input_ids"].repeat(b, 1)[part], cands["attention_mask"].repeat(b, 1)[part])

    def floor_train():
        embeds, mask = lm.prompted_embeddings(x, prompt)
        answer = lm.model.get_input_embeddings()(own["input_ids"])
        out = lm.run_decoder(torch.cat([embeds, answer], 1), torch.cat([mask, own["attention_mask"]], 1))
        out.last_hidden_state.sum().backward()
        prompt.grad = None

    def step(loss: torch.Tensor) -> None:
        opt.zero_grad()
        loss.backward()
        opt.step()

    def train_answer():
        step(lm.answer_loss(x, prompt, own))

    def train_rank():  # as GenerativeMethod's: both losses from one scoring of every candidate
        scores = lm.answer_log_likelihood(x, prompt, cands)  # (B, A), with gradient
        lengths = cands["attention_mask"].sum(dim=1).to(scores)[target]  # (B,)
        answer = -(scores.gather(1, target[:, None]).squeeze(1) * lengths).sum() / lengths.sum()
        step(answer + torch.nn.functional.cross_entropy(scores, target))

    cases = {"floor_forward": floor_forward, "scoring": scoring, "scoring_full_passes": scoring_full_passes,
             "floor_train": floor_train, "train_answer": train_answer, "train_rank": train_rank}
    for fn in cases.values():  # warm-up
        fn()
    rates: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            rates[name].append(timed(fn, b))
    median = {k: statistics.median(v) for k, v in rates.items()}
    rows = {k: {"samples_per_second": round(v, 2), "runs": [round(r, 2) for r in rates[k]]} for k, v in median.items()}
    for name, floor in (("scoring", "floor_forward"), ("scoring_full_passes", "floor_forward"),
                        ("train_answer", "floor_train"), ("train_rank", "floor_train")):
        rows[name]["floor"] = floor
        rows[name]["floor_over_this"] = round(median[floor] / median[name], 2)  # x slower than the floor
    doc = {**provenance("bench_llm_step", argv), "backbone": args.backbone, "batch_size": b,
           "prompt_length": args.prompt_length, "answers": a, "share_head": lm.config.share_head, "input_tokens": int(x["attention_mask"].sum(1).max()),
           "rows": rows}
    write_json(args.out, doc)
    for k, r in rows.items():
        print(f"{k:22s} {r['samples_per_second']:8.2f} samples/s" + (f"  ({r['floor_over_this']}x the floor's time)"
                                                                       if "floor" in r else ""))
    return doc


if __name__ == "__main__":
    main()
