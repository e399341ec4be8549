"""Options of the methods that answer by generation: the ranking loss and a separate query encoder."""

from __future__ import annotations

import pytest
import torch
from torch.nn.functional import cross_entropy

from cl_prompts.backbones import CausalLMConfig, load_causal_lm
from cl_prompts.methods import load_model
from cl_prompts.methods.generative import readable_label

from .test_generative import EXPERIENCES, NAMES, TEXTS, built, inputs, lm, train  # noqa: F401 (lm is a fixture)


@pytest.mark.parametrize("name", ["prompt_tuning", "progressive_prompts", "growing_pool"])
def test_the_ranking_loss_adds_the_cross_entropy_over_the_open_experiences_answers(lm, name):  # noqa: F811
    model = built(name, lm, rank_weight=0.5)
    classes = EXPERIENCES[0]
    model.begin_experience(0, classes)
    x, y = inputs(lm, [2, 0, 1])
    loss = model.training_loss(x, y, observe=False)
    prompts = model._train_prompts(x)
    answers = [readable_label(NAMES[c]) for c in classes]
    scores = lm.answer_log_likelihood(x, prompts, answers)  # (B, 3): targets 2, 0, 1 are columns 2, 0, 1
    want = lm.answer_loss(x, prompts, [answers[int(c)] for c in y]) + 0.5 * cross_entropy(scores, y)
    torch.testing.assert_close(loss, want)
    plain = built(name, lm, rank_weight=0.0)
    plain.begin_experience(0, classes)
    torch.testing.assert_close(plain.training_loss(x, y, observe=False), lm.answer_loss(x, prompts, [answers[int(c)] for c in y]))


def test_growing_pool_alone_adds_the_whole_ranking_loss_by_default(lm):  # noqa: F811
    classes = EXPERIENCES[0]
    x, y = inputs(lm, [2, 0, 1])
    answers = [readable_label(NAMES[c]) for c in classes]
    for name, weight in (("growing_pool", 1.0), ("prompt_tuning", 0.0), ("progressive_prompts", 0.0)):
        model = built(name, lm)  # the defaults (growing_pool's chosen on validation: docs/llm.md)
        model.begin_experience(0, classes)
        prompts = model._train_prompts(x)
        scores = lm.answer_log_likelihood(x, prompts, answers)  # (B, 3)
        want = lm.answer_loss(x, prompts, [answers[int(c)] for c in y]) + weight * cross_entropy(scores, y)
        torch.testing.assert_close(model.training_loss(x, y, observe=False), want, msg=name)
    assert built("growing_pool", lm).config.candidates == 3


def test_the_ranking_loss_trains_the_prompt_to_rank_the_right_answer_first(lm):  # noqa: F811
    model = built("prompt_tuning", lm, rank_weight=1.0)
    frozen = {k: v.clone() for k, v in lm.model.state_dict().items()}
    x, y = inputs(lm, EXPERIENCES[0])
    model.begin_experience(0, EXPERIENCES[0])
    opt = model.make_optimizer()
    margins = []
    for _ in range(10):
        loss = model.training_loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            s = model.score(x, torch.tensor(EXPERIENCES[0]), model._train_prompts(x))  # (3, 3)
        margins.append(float((s.diag() - s.masked_fill(torch.eye(3, dtype=torch.bool), -1e9).amax(1)).mean()))
    assert margins[-1] > margins[0], margins
    assert all(torch.equal(v, frozen[k]) for k, v in lm.model.state_dict().items())


def test_rank_weight_is_checked(lm):  # noqa: F811
    with pytest.raises(ValueError, match="rank_weight"):
        built("prompt_tuning", lm, rank_weight=-1.0)


def test_growing_pool_routes_by_the_query_encoders_features(tmp_path):
    bb = load_causal_lm(CausalLMConfig(name_or_path="tiny-llama", max_length=24, query_encoder="tiny-bert"))
    model = built("growing_pool", bb, layers=2)
    assert model.route_stats.expand(torch.zeros(1, bb.query_encoder.query_width(2))).shape == (1, 64)
    train(model, bb, steps=1)
    x, _ = inputs(bb, list(range(6)))
    route, _ = model.candidate_tasks(x)
    features = bb.query_encoder.query_features(bb.query_encoder.tokenize(TEXTS), layers=2)  # (6, 64)
    torch.testing.assert_close(route, model.route_stats.expand(features).float() @ model.route_readout)
    before = model(x)
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m", bb)
    loaded.eval()
    torch.testing.assert_close(loaded(x), before)
    plain = load_causal_lm(CausalLMConfig(name_or_path="tiny-llama", max_length=24))
    with pytest.raises(ValueError, match="query_encoder"):
        load_model(tmp_path / "m", plain)


def test_l2p_takes_the_top_k_prompts_by_key_match_and_pulls_their_keys_to_the_query(lm):  # noqa: F811
    model = built("l2p", lm, pull_coef=0.5)
    model.begin_experience(0, EXPERIENCES[0])
    x, y = inputs(lm, EXPERIENCES[0])
    query = lm.query_features(x)
    sel = model.pool.select(query)
    assert sel.prompts.shape == (3, 2 * 2, lm.hidden_size)  # top 2 of 4 prompts, 2 tokens each
    answers = [readable_label(NAMES[c]) for c in y]
    want = lm.answer_loss(x, sel.prompts, answers) + 0.5 * (1 - sel.scores).sum(1).mean()
    torch.testing.assert_close(model.training_loss(x, y, observe=False), want)
    keys = model.pool.keys.detach().clone()
    model.end_experience(0)
    model.begin_experience(1, EXPERIENCES[1])
    x, y = inputs(lm, EXPERIENCES[1])
    opt = model.make_optimizer()
    for _ in range(2):
        loss = model.training_loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.end_experience(1)
    assert not torch.equal(model.pool.keys, keys)  # the shared pool keeps training
    model.eval()
    logits = model(inputs(lm, [0, 4])[0])
    assert torch.isfinite(logits).all()  # every seen class is scored under the chosen prompts


def test_l2p_keys_take_the_query_encoders_width(tmp_path):
    bb = load_causal_lm(CausalLMConfig(name_or_path="tiny-llama", max_length=24, query_encoder="tiny-bert"))
    model = built("l2p", bb)
    train(model, bb, steps=1)
    assert model.pool.keys.shape == (4, bb.query_width())
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m", bb)
    x, _ = inputs(bb, list(range(6)))
    model.eval()
    loaded.eval()
    torch.testing.assert_close(loaded(x), model(x))


def test_progressive_prompts_task_aware_scores_the_tasks_classes_under_its_prompts_and_the_earlier_ones(lm):  # noqa: F811
    model = built("progressive_prompts", lm)
    train(model, lm, steps=1)
    x, _ = inputs(lm, [0, 4])
    p = model.config.prompt_length
    first, second = model.frozen[p:], model.frozen[:p]  # newest first
    logits = model.task_aware_logits(x, 0)
    answers = [readable_label(NAMES[c]) for c in EXPERIENCES[0]]
    torch.testing.assert_close(logits[:, EXPERIENCES[0]], lm.answer_log_likelihood(x, first[None], answers))
    assert torch.isinf(logits[:, EXPERIENCES[1]]).all()
    answers = [readable_label(NAMES[c]) for c in EXPERIENCES[1]]
    torch.testing.assert_close(model.task_aware_logits(x, 1)[:, EXPERIENCES[1]],
                               lm.answer_log_likelihood(x, torch.cat([second, first])[None], answers))
    with pytest.raises(ValueError, match="finished experience"):
        model.task_aware_logits(x, 2)


def test_growing_pool_task_aware_scores_under_the_true_tasks_prompt(lm):  # noqa: F811
    model = built("growing_pool", lm, route_weight=0.5)
    train(model, lm, steps=1)
    x, _ = inputs(lm, [0, 4])
    route, _ = model.candidate_tasks(x)
    answers = [readable_label(NAMES[c]) for c in EXPERIENCES[1]]
    want = lm.answer_log_likelihood(x, model._task_prompts(torch.tensor([1])), answers) + 0.5 * route[:, EXPERIENCES[1]]
    logits = model.task_aware_logits(x, 1)
    torch.testing.assert_close(logits[:, EXPERIENCES[1]], want)
    assert torch.isinf(logits[:, EXPERIENCES[0]]).all()


def test_finetune_trains_a_copy_of_the_llm_and_leaves_the_given_one_frozen(lm, tmp_path):  # noqa: F811
    frozen = {k: v.clone() for k, v in lm.model.state_dict().items()}
    model = built("finetune", lm, lr=1e-2)
    losses = train(model, lm, steps=4, experiences=EXPERIENCES[:1])
    assert losses[-1] < losses[0], losses
    assert all(torch.equal(v, frozen[k]) for k, v in lm.model.state_dict().items())  # the caller's LLM
    changed = [k for k, v in model.backbone.model.state_dict().items() if not torch.equal(v, frozen[k])]
    assert changed and not model.trainable_parameters()  # trained, then frozen between experiences
    x, _ = inputs(lm, [0, 1])
    answers = [readable_label(NAMES[c]) for c in EXPERIENCES[0]]
    torch.testing.assert_close(model(x)[:, EXPERIENCES[0]], model.backbone.answer_log_likelihood(x, None, answers))
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m", lm)
    loaded.eval()
    torch.testing.assert_close(loaded(x), model(x))
