"""Answer scoring, the answer loss and greedy generation of a :class:`PromptedCausalLM`.

The hidden state that predicts answer token j is the input's last real one for j = 0
and answer token j - 1's after it. Scores are length-normalised: the *mean* log-probability
per answer token (end marker included), so long class names are not penalised for their
length. :func:`answer_log_likelihood` runs the shared prompted input once, then all
candidate answers at once against its key/value cache (expanded to inputs x answers rows,
``config.answer_batch`` rows per pass); the LM head runs only at answer positions.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from transformers import DynamicCache

from .causal_input import input_pass
from .causal_lm import Answers, PromptedCausalLM
from .inputs import Inputs, batch_size
from .precision import autocast


def _answer_tokens(bb: PromptedCausalLM, answers: Answers) -> tuple[torch.Tensor, torch.Tensor]:
    """list[str] or {"input_ids", "attention_mask"} -> ids, mask (A, La) on the model's device."""
    if isinstance(answers, Mapping):
        ids, mask = answers.get("input_ids"), answers.get("attention_mask")
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or mask is None or mask.shape != ids.shape:
            raise ValueError("answers must be a list of str or {'input_ids', 'attention_mask'} of shape (A, La)")
        if not bool(mask[:, 0].all()) or bool((mask[:, 1:] > mask[:, :-1]).any()):
            raise ValueError("answers must be right-padded with a first real token (see tokenize_answers)")
    else:
        enc = bb.tokenize_answers(answers)
        ids, mask = enc["input_ids"], enc["attention_mask"]
    return ids.to(bb.device).long(), mask.to(bb.device).long()


def _predicting(first: torch.Tensor, answer_hidden: torch.Tensor) -> torch.Tensor:
    """(N, D) input's last hidden, (N, La, D) answer hiddens -> (N, La, D) the states predicting each answer token."""
    return torch.cat([first[:, None], answer_hidden[:, :-1]], dim=1)


def answer_token_log_probs(bb: PromptedCausalLM, inputs: Inputs, input_prompts: torch.Tensor | None,
                           answer_ids: torch.Tensor, answer_mask: torch.Tensor,
                           prefix_prompts: Mapping[int, torch.Tensor] | None = None) -> torch.Tensor:
    """(B, La) log p of each input's own answer tokens (0 at padding), one pass per row.

    ``[prompts, input, answer]`` through the model at once (the template's head once for
    the batch when the prompts are shared: :mod:`.causal_input`).
    answer_ids / answer_mask: (B, La) right-padded.
    """
    if answer_ids.shape[0] != batch_size(inputs):
        raise ValueError(f"answers must hold one answer per input ({batch_size(inputs)}), got {answer_ids.shape[0]}")
    answer_embeds = bb.model.get_input_embeddings()(answer_ids)  # (B, La, D)
    run = input_pass(bb, inputs, input_prompts, prefix_prompts, extra=(answer_embeds, answer_mask))
    return bb.token_log_probs(_predicting(run.first, run.hidden[:, run.width:]), answer_ids, answer_mask)


def answer_log_likelihood(bb: PromptedCausalLM, inputs: Inputs, input_prompts: torch.Tensor | None,
                          answers: Answers, prefix_prompts: Mapping[int, torch.Tensor] | None = None) -> torch.Tensor:
    """(B, A) mean log-probability per token of every candidate answer after every prompted input.

    inputs: (B, T) templated inputs; input_prompts: (B|1, P, D) or None; answers: A texts
    or their tokens from ``tokenize_answers``. Differentiable w.r.t. the prompts.
    """
    answer_ids, answer_mask = _answer_tokens(bb, answers)  # (A, La)
    run = input_pass(bb, inputs, input_prompts, prefix_prompts, use_cache=True)
    b, a, mask, first = batch_size(inputs), answer_ids.shape[0], run.mask, run.first  # mask (B, S), first (B, D)
    prefixes = bb.check_prefixes(prefix_prompts, b)
    layers = [(layer.keys, layer.values) for layer in run.cache.layers]  # each (B, H_kv, S, d)
    answer_embeds = bb.model.get_input_embeddings()(answer_ids).to(run.hidden.dtype)  # (A, La, D)
    lengths = answer_mask.sum(dim=1)  # (A,)
    per_pass = max(1, bb.config.answer_batch // b)
    # Answers of like length pass together, each pass as wide as its longest: padding
    # columns change no score but cost as much as real ones.
    order = torch.argsort(lengths, stable=True)  # (A,)
    scores = []
    for start in range(0, a, per_pass):
        chunk = order[start:start + per_pass]
        n, width = chunk.shape[0], int(lengths[chunk].max())
        rows = torch.arange(b, device=mask.device).repeat_interleave(n)  # (B * n,) input of each row
        cache = DynamicCache(ddp_cache_data=[(k[rows], v[rows]) for k, v in layers], config=bb.model.config)
        ids = answer_ids[chunk, :width].repeat(b, 1)  # (B * n, La')
        amask = answer_mask[chunk, :width].repeat(b, 1)
        full_mask = torch.cat([mask[rows], amask], dim=1)  # (B * n, S + La')
        row_prefixes = None if prefixes is None else {k: p[rows] for k, p in prefixes.items()}
        hidden = bb.run_decoder(answer_embeds[chunk, :width].repeat(b, 1, 1), full_mask, row_prefixes,
                                cache=cache).last_hidden_state  # (B * n, La', D)
        token_lp = bb.token_log_probs(_predicting(first[rows], hidden), ids, amask)  # (B * n, La')
        scores.append((token_lp.sum(dim=1) / lengths[chunk].to(token_lp).repeat(b)).view(b, n))
    return torch.cat(scores, dim=1)[:, torch.argsort(order)]  # (B, A) in the answers' order


def answer_loss(bb: PromptedCausalLM, inputs: Inputs, input_prompts: torch.Tensor | None, answers: Answers,
                prefix_prompts: Mapping[int, torch.Tensor] | None = None) -> torch.Tensor:
    """Cross-entropy of each input's own answer, averaged over every answer token of the batch.

    answers: B texts (one per input) or their tokens (B, La). Only answer tokens count:
    the prompts, the template and the input are context, never targets.
    """
    answer_ids, answer_mask = _answer_tokens(bb, answers)
    token_lp = answer_token_log_probs(bb, inputs, input_prompts, answer_ids, answer_mask, prefix_prompts)
    return -token_lp.sum() / answer_mask.sum()


def generate(bb: PromptedCausalLM, inputs: Inputs, input_prompts: torch.Tensor | None,
             prefix_prompts: Mapping[int, torch.Tensor] | None, max_new_tokens: int) -> list[str]:
    """Greedy decoding with the prompts in place, until an end marker or ``max_new_tokens``."""
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
    run = input_pass(bb, inputs, input_prompts, prefix_prompts, use_cache=True)
    b, mask, last, cache = batch_size(inputs), run.mask, run.first, run.cache  # mask (B, S), last (B, D)
    prefixes = bb.check_prefixes(prefix_prompts, b)
    stops = torch.tensor(sorted(bb.stop_ids), dtype=torch.long, device=mask.device)
    done = torch.zeros(b, dtype=torch.bool, device=mask.device)
    tokens = []
    for _ in range(max_new_tokens):
        with autocast(bb.config.precision, bb.device):
            logits = bb.lm_head(last).float()  # (B, V)
        step = logits.argmax(dim=-1)  # (B,)
        done = done | torch.isin(step, stops)
        tokens.append(torch.where(done, bb.tokenizer.pad_token_id, step))
        if bool(done.all()):
            break
        mask = torch.cat([mask, mask.new_ones(b, 1)], dim=1)
        step_embeds = bb.model.get_input_embeddings()(step[:, None])  # (B, 1, D)
        out = bb.run_decoder(step_embeds, mask, prefixes, cache=cache)
        cache, last = out.cache, out.last_hidden_state[:, -1]
    return bb.decode(torch.stack(tokens, dim=1))
