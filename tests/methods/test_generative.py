"""The methods that answer by generation, on a tiny random Llama: registry, answers, training, routing, saving."""

from __future__ import annotations

import functools

import pytest
import torch

from cl_prompts.backbones import CausalLMConfig
from cl_prompts.backbones.testing import tiny_causal_lm, tiny_text_backbone
from cl_prompts.methods import build_model, load_model
from cl_prompts.methods.generative import GenerativeMethod, read_label_texts, readable_label
from cl_prompts.methods.registry import get_method_class, list_methods

NAMES = ["alarm_set", "alarm_query", "play_music", "play_radio", "weather_query", "news_query"]
TEXTS = ["wake me up at seven", "which alarms are set", "play some jazz", "put the radio on",
         "will it rain today", "what is in the news"]
EXPERIENCES = [[0, 1, 2], [3, 4, 5]]
GENERATIVE = ("growing_pool", "l2p", "progressive_prompts", "prompt_tuning", "zero_shot")
TINY = {"finetune": {},
        "growing_pool": {"lr": 0.05, "prompt_length": 3, "projection_dim": 64, "ridge": 1.0},
        "l2p": {"lr": 0.05, "prompt_length": 2, "pool_size": 4, "top_k": 2},
        "progressive_prompts": {"lr": 0.05, "prompt_length": 2},
        "prompt_tuning": {"lr": 0.05, "prompt_length": 3},
        "zero_shot": {}}


@functools.cache
def _llama():
    bb = tiny_causal_lm("llama", CausalLMConfig(name_or_path="tiny-llama", max_length=24))
    with torch.no_grad():  # a random head's logits are near zero: no prompt could move them
        bb.model.lm_head.weight.mul_(50)
    return bb


@pytest.fixture
def lm():
    bb = _llama()
    bb.clear_query_cache()
    return bb


def inputs(bb, rows):
    x = bb.tokenize([TEXTS[i] for i in rows])
    return x, torch.tensor(rows)


def train(model, bb, steps=3, experiences=EXPERIENCES):
    """Every experience in turn, ``steps`` full-batch steps each; returns the loss of each step."""
    losses = []
    for e, classes in enumerate(experiences):
        model.begin_experience(e, classes)
        x, y = inputs(bb, classes)
        if model.requires_training:
            opt = model.make_optimizer()
            for _ in range(steps):
                loss = model.training_loss(x, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
        else:
            model.observe(x, y)
        model.end_experience(e)
    model.eval()
    return losses


def built(name, bb, **options):
    torch.manual_seed(0)
    model = build_model(name, bb, len(NAMES), **{**TINY[name], **options})
    model.set_class_names(NAMES)
    return model


# ---------------------------------------------------------------- registry
def test_build_model_picks_the_variant_of_the_backbone(lm):
    assert isinstance(build_model("prompt_tuning", lm, 6), GenerativeMethod)
    assert not isinstance(build_model("prompt_tuning", tiny_text_backbone(), 6), GenerativeMethod)
    assert type(build_model("ncm", lm, 6)).__name__ == "NCM"  # frozen features: runs on a causal LM too
    assert set(GENERATIVE) <= set(list_methods(causal=True))
    assert not set(list_methods(causal=True)) & {"dualprompt", "coda_prompt", "joint"}
    assert "zero_shot" not in list_methods()


def test_a_method_on_the_wrong_kind_of_backbone_is_refused_by_name(lm):
    with pytest.raises(ValueError, match="needs a causal LM backbone"):
        get_method_class("zero_shot")
    with pytest.raises(ValueError, match="does not run on a causal LM; methods that do: .*growing_pool"):
        build_model("dualprompt", lm, 6)
    with pytest.raises(TypeError, match="needs a causal LM backbone"):
        get_method_class("zero_shot", causal=True)(tiny_text_backbone(), 6, get_method_class(
            "zero_shot", causal=True).config_class())


# ---------------------------------------------------------------- answers
def test_class_names_become_readable_answer_texts():
    assert readable_label("card_arrival") == "card arrival"
    assert readable_label("  what-is__this ") == "what is this"
    with pytest.raises(ValueError, match="empty answer text"):
        readable_label("__")


def test_label_text_file_overrides_some_classes_and_refuses_bad_rows(tmp_path):
    f = tmp_path / "labels.csv"
    f.write_text("label,text\nalarm_set,set an alarm\nnews_query,news\n")
    texts = read_label_texts(f, NAMES)
    assert texts[0] == "set an alarm" and texts[5] == "news" and texts[1] == "alarm query"
    f.write_text("ghost,boo\n")
    with pytest.raises(ValueError, match=r"\['ghost'\] are not classes"):
        read_label_texts(f, NAMES)
    f.write_text("alarm_set,alarm query\n")  # now two classes share one answer
    with pytest.raises(ValueError, match="share the answer text 'alarm query'"):
        read_label_texts(f, NAMES)
    f.write_text("alarm_set,a,b\n")
    with pytest.raises(ValueError, match="row 1 must be 'label,text'"):
        read_label_texts(f, NAMES)


def test_without_answer_texts_a_generative_method_says_what_to_call(lm):
    model = build_model("zero_shot", lm, 6)
    model.begin_experience(0, [0, 1])
    with pytest.raises(RuntimeError, match="set_class_names"):
        model(inputs(lm, [0])[0])


# ---------------------------------------------------------------- scores and training
def test_zero_shot_scores_are_the_answer_likelihoods_of_the_seen_classes(lm):
    model = built("zero_shot", lm, list_answers=False)
    train(model, lm, experiences=EXPERIENCES[:1])
    x, _ = inputs(lm, [0, 4])
    logits = model(x)  # (B, C)
    want = lm.answer_log_likelihood(x, None, [readable_label(n) for n in NAMES[:3]])
    torch.testing.assert_close(logits[:, :3], want)
    assert torch.isinf(logits[:, 3:]).all()
    assert model.trainable_parameters() == []


def test_zero_shot_lists_the_seen_answers_in_front_of_the_input(lm):
    model = built("zero_shot", lm)
    train(model, lm, experiences=EXPERIENCES[:1])
    seen = model.seen_classes()
    listed = model.answer_list(seen)  # (1, P, D): the words, as the LM's own token embeddings
    text = "Possible answers: " + ", ".join(readable_label(n) for n in NAMES[:3]) + ".\n"
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert listed.shape == (1, len(ids), lm.hidden_size)
    torch.testing.assert_close(listed[0], lm.model.get_input_embeddings().weight[ids].float())
    x, _ = inputs(lm, [0, 4])
    want = lm.answer_log_likelihood(x, listed, [readable_label(n) for n in NAMES[:3]])
    torch.testing.assert_close(model(x)[:, :3], want)
    assert not torch.allclose(want, lm.answer_log_likelihood(x, None, [readable_label(n) for n in NAMES[:3]]))
    texts = ["wake me up at seven"]
    assert model.generate(texts, max_new_tokens=3) == lm.generate(texts, listed, max_new_tokens=3)


@pytest.mark.parametrize("name", ["prompt_tuning", "progressive_prompts", "growing_pool", "l2p"])
def test_training_lowers_the_answer_loss_and_leaves_the_model_frozen(lm, name):
    model = built(name, lm)
    frozen = {k: v.clone() for k, v in lm.model.state_dict().items()}
    losses = train(model, lm, steps=8, experiences=EXPERIENCES[:1])
    assert losses[-1] < losses[0] - 0.1, losses
    assert all(torch.equal(v, frozen[k]) for k, v in lm.model.state_dict().items())


def test_progressive_prompts_freeze_each_experience_and_put_the_new_one_first(lm):
    model = built("progressive_prompts", lm)
    train(model, lm, experiences=EXPERIENCES[:1])
    first = model.frozen.clone()  # (P, D)
    model.begin_experience(1, EXPERIENCES[1])
    sequence = model._train_prompts(None)  # (1, 2P, D)
    assert sequence.shape == (1, 4, lm.hidden_size)
    assert torch.equal(sequence[0, 2:].detach(), first)
    assert [p is model.current for p in model.trainable_parameters()] == [True]
    opt = model.make_optimizer()
    loss = model.training_loss(*inputs(lm, EXPERIENCES[1]))
    loss.backward()
    opt.step()
    model.end_experience(1)
    assert torch.equal(model.frozen[2:], first)  # the older prompt never changed
    prompts, tasks = model.input_prompts()
    assert prompts.shape == (2, 2, lm.hidden_size) and tasks.tolist() == [0, 1]
    assert torch.equal(prompts[0], first)


def test_growing_pool_routes_through_the_key_index_to_each_task_prompt(lm):
    model = built("growing_pool", lm, candidates=1)
    train(model, lm, steps=3, experiences=EXPERIENCES[:1])
    old = model.pool.lookup(torch.tensor([0]))[0].detach().clone()
    train_rest = EXPERIENCES[1:]
    model.train()
    model.begin_experience(1, train_rest[0])
    opt = model.make_optimizer()
    for _ in range(3):
        loss = model.training_loss(*inputs(lm, train_rest[0]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.end_experience(1)
    model.eval()
    assert torch.equal(model.pool.lookup(torch.tensor([0]))[0], old)  # the first task's prompt is frozen
    assert model.key_search() == {"index": "flat", "backend": "faiss", "keys": 6}  # one key per class
    x, y = inputs(lm, list(range(6)))
    tasks = model.predict_task(x)
    logits = model(x)
    # one candidate: exactly the routed task's classes are scored
    for b in range(6):
        scored = torch.isfinite(logits[b]).nonzero().flatten().tolist()
        assert scored == EXPERIENCES[int(tasks[b])]
    assert (tasks == torch.tensor([0, 0, 0, 1, 1, 1])).float().mean() >= 5 / 6  # the ridge keys fit 6 samples


def test_growing_pool_scores_are_answer_likelihood_plus_weighted_routing_logit(lm):
    model = built("growing_pool", lm, candidates=2, route_weight=0.5)
    train(model, lm, steps=2)
    x, _ = inputs(lm, [1, 4])
    route, _ = model.candidate_tasks(x)
    logits = model(x)
    for task, classes in enumerate(EXPERIENCES):
        prompt = model._task_prompts(torch.tensor([task]))
        want = lm.answer_log_likelihood(x, prompt, [readable_label(NAMES[c]) for c in classes])
        torch.testing.assert_close(logits[:, classes], want + 0.5 * route[:, classes])


# ---------------------------------------------------------------- save / load
@pytest.mark.parametrize("name", GENERATIVE)
def test_a_saved_generative_method_answers_the_same_after_loading(lm, tmp_path, name):
    model = built(name, lm)
    model.set_answer_texts(["set alarm", "list alarms", "music", "radio", "weather", "news"])
    train(model, lm, steps=2)
    x, _ = inputs(lm, list(range(6)))
    before = model(x)
    model.save_pretrained(tmp_path / name)
    loaded = load_model(tmp_path / name, lm)
    loaded.eval()
    assert type(loaded) is type(model) and loaded.answer_texts == model.answer_texts
    torch.testing.assert_close(loaded(x), before)


def test_query_features_of_several_layers_are_the_pooled_hidden_states_concatenated(lm):
    x, _ = inputs(lm, [0, 3])
    one = lm.query_features(x, use_cache=False)
    two = lm.query_features(x, use_cache=False, layers=2)  # (B, 2D)
    assert two.shape == (2, 2 * lm.hidden_size)
    torch.testing.assert_close(two[:, lm.hidden_size:], one)  # the last one is the final (normed) state
    torch.testing.assert_close(lm.query_features(x, layers=2), two)  # cached rows are the same
    torch.testing.assert_close(lm.query_features(x), one)  # and kept apart from the one-layer rows


def test_generation_uses_the_prompts_each_method_predicts_with(lm):
    texts = [TEXTS[0], TEXTS[4]]
    x, _ = inputs(lm, [0, 4])
    pool = built("growing_pool", lm)
    train(pool, lm, steps=1)
    routed = pool._task_prompts(pool.predict_task(x))  # (B, P, D)
    assert pool.generate(texts, max_new_tokens=3) == lm.generate(x, routed, max_new_tokens=3)
    tuned = built("prompt_tuning", lm)
    train(tuned, lm, steps=1)
    assert tuned.generate(x, max_new_tokens=3) == lm.generate(x, tuned.prompt[None], max_new_tokens=3)
    plain = built("zero_shot", lm, list_answers=False)
    train(plain, lm)
    assert plain.generate(texts, max_new_tokens=3) == lm.generate(texts, max_new_tokens=3)


@pytest.mark.parametrize("name", ["growing_pool", "progressive_prompts", "prompt_tuning"])
def test_labels_init_starts_each_prompt_from_its_experience_answer_texts(lm, name):
    model = built(name, lm, prompt_init="labels", prompt_length=4)
    model.begin_experience(0, [1, 2])
    words = lm.tokenizer("alarm query, play music", add_special_tokens=False)["input_ids"][:4]
    table = lm.model.get_input_embeddings().weight
    prompt = model._train_prompts(None)[0, :4]  # the open experience's prompt comes first
    torch.testing.assert_close(prompt, table[torch.tensor(words)])
