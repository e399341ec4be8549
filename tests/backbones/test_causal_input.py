"""The prompted input pass: the template's head run once for the batch gives the whole pass's outputs."""

from __future__ import annotations

import dataclasses
import functools

import pytest
import torch

from cl_prompts.backbones import CausalLMConfig, PromptedCausalLM
from cl_prompts.backbones.causal_input import input_pass, split_off_head
from cl_prompts.backbones.inputs import prepare
from cl_prompts.backbones.templates import encode_inputs
from cl_prompts.backbones.testing import tiny_causal_lm

TEXTS = ["book a flight to paris", "what is my balance", "set an alarm for six in the morning please"]
ANSWERS = ["travel", "balance", "alarm clock", "card arrival"]
CASES = [(family, chat, side) for family in ("llama", "gpt2") for chat in (False, True) for side in ("left", "right")]


@functools.cache
def _tiny(family: str, chat: bool) -> PromptedCausalLM:
    return tiny_causal_lm(family, CausalLMConfig(name_or_path=f"tiny-{family}"), chat=chat)


def _pair(family: str, chat: bool) -> tuple[PromptedCausalLM, PromptedCausalLM]:
    """The same model twice: the head shared, and every row run whole."""
    shared = _tiny(family, chat)
    whole = PromptedCausalLM(shared.model, dataclasses.replace(shared.config, share_head=False), shared.tokenizer)
    assert shared.config.share_head and len(shared.head_ids) > 0
    return shared, whole


def _prompts(bb, batch=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    prompt = torch.nn.Parameter(torch.randn(batch, 3, bb.hidden_size, generator=gen))
    prefix = {0: torch.nn.Parameter(torch.randn(batch, 2, 2, bb.prefix_size, generator=gen))}
    return prompt, prefix


def _inputs(bb, side):
    return encode_inputs(bb.template, bb.tokenizer, TEXTS, bb.config.max_length, side)


@pytest.mark.parametrize("family,chat,side", CASES)
def test_shared_head_gives_the_whole_pass_scores_loss_gradients_and_answers(family, chat, side):
    shared, whole = _pair(family, chat)
    x = _inputs(shared, side)
    prompt, prefix = _prompts(shared)
    assert input_pass(shared, x, prompt, prefix).width < input_pass(whole, x, prompt, prefix).width  # split
    results = []
    for bb in (shared, whole):
        prompt, prefix = _prompts(bb)
        scores = bb.answer_log_likelihood(x, prompt, ANSWERS, prefix)
        loss = bb.answer_loss(x, prompt, ANSWERS[:3], prefix)
        loss.backward()
        texts = bb.generate(x, prompt.detach(), {0: prefix[0].detach()}, max_new_tokens=4)
        results.append((scores.detach(), loss.detach(), prompt.grad, prefix[0].grad, texts))
    (s1, l1, g1, p1, t1), (s2, l2, g2, p2, t2) = results
    torch.testing.assert_close(s1, s2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(l1, l2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g1, g2, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(p1, p2, atol=1e-5, rtol=1e-4)
    assert t1 == t2


def test_without_prompts_the_model_weights_get_the_whole_pass_gradient():
    """Sequential fine-tuning trains the model itself: its gradient must not change either."""
    shared, whole = _pair("llama", True)
    x = _inputs(shared, "left")
    grads = []
    for bb in (shared, whole):
        weight = bb.model.get_input_embeddings().weight
        weight.requires_grad_(True)
        try:
            bb.answer_loss(x, None, ANSWERS[:3]).backward()
            grads.append(weight.grad.clone())
        finally:
            weight.grad = None
            weight.requires_grad_(False)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_rows_with_their_own_prompts_run_whole_and_agree():
    shared, whole = _pair("llama", True)
    x = _inputs(shared, "left")
    prompt, prefix = _prompts(shared, batch=len(TEXTS))  # one prompt per row (l2p's selection)
    run = input_pass(shared, x, prompt, prefix)
    assert run.width == prompt.shape[1] + int(x["attention_mask"].sum(1).max())  # nothing was split off
    torch.testing.assert_close(shared.answer_log_likelihood(x, prompt, ANSWERS, prefix),
                               whole.answer_log_likelihood(x, prompt, ANSWERS, prefix), atol=1e-5, rtol=1e-5)


def test_shared_pass_runs_only_each_rows_own_tokens():
    shared, _ = _pair("gpt2", True)
    x = _inputs(shared, "left")  # padded to max_length on the left
    assert x["input_ids"].shape[1] == shared.config.max_length
    prompt, _ = _prompts(shared)
    run = input_pass(shared, x, prompt, use_cache=True)
    longest = int(x["attention_mask"].sum(1).max())
    assert run.width == longest - len(shared.head_ids)  # the head and the padding columns are gone
    assert run.mask.shape == (len(TEXTS), prompt.shape[1] + longest)
    assert run.cache.get_seq_length() == prompt.shape[1] + longest


def test_leading_padding_is_trimmed_only_when_asked():
    ids = torch.tensor([[0, 0, 5, 6], [0, 0, 0, 7]])
    mask = (ids > 0).long()
    kept, _ = prepare({"input_ids": ids, "attention_mask": mask}, "text", torch.float32)
    trimmed, tmask = prepare({"input_ids": ids, "attention_mask": mask}, "text", torch.float32, trim_leading=True)
    assert kept["input_ids"].shape == (2, 4)  # an encoder's positions count every column
    assert torch.equal(trimmed["input_ids"], torch.tensor([[5, 6], [0, 7]])) and torch.equal(tmask, mask[:, 2:])


@pytest.mark.parametrize("side", ["left", "right"])
def test_split_off_head_drops_the_head_of_every_row(side):
    head = torch.tensor([1, 2])
    rows = [[1, 2, 5, 6, 7], [1, 2, 8]]
    width = 5
    ids, mask = torch.zeros(2, width, dtype=torch.long), torch.zeros(2, width, dtype=torch.long)
    for i, row in enumerate(rows):
        cols = slice(0, len(row)) if side == "right" else slice(width - len(row), width)
        ids[i, cols], mask[i, cols] = torch.tensor(row), 1
    own_ids, own_mask = split_off_head(ids, mask, head)
    assert own_ids.shape == (2, 3)
    assert [own_ids[i][own_mask[i].bool()].tolist() for i in range(2)] == [[5, 6, 7], [8]]
    assert own_mask.sum().item() == 4
    assert split_off_head(ids, mask, torch.tensor([1, 3])) is None  # a row without the head
    assert split_off_head(ids, mask, torch.tensor([1, 2, 8])) is None  # nothing would follow it
    assert split_off_head(ids, mask, torch.tensor([], dtype=torch.long)) is None


def test_share_head_is_validated():
    with pytest.raises(TypeError, match="share_head"):
        CausalLMConfig(share_head="yes")
