"""Behaviour particular to single methods: keys, task identification, replay, orthogonality."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cl_prompts.methods.features import FeatureCollector
from cl_prompts.methods.prompts import gram_schmidt


def _all(stream):
    x = {k: torch.cat([s[1][k] for s in stream]) for k in stream[0][1]}
    return x, torch.cat([s[2] for s in stream])


def test_growing_pool_one_key_per_class_and_task_identification(backbone, stream, h):
    model = h.build("growing_pool", backbone)
    h.run_stream(model, stream, steps=5)
    assert model.key_index.ntotal == 6 and model.class_task.tolist() == [0, 0, 1, 1, 2, 2]
    assert model.pool.task_sizes == [1, 1, 1] and model.pool.num_frozen == 3
    x, y = _all(stream)
    tasks = model.predict_task(x)
    assert (tasks == y // 2).float().mean() > 0.9  # the synthetic classes are well separated
    assert (model(x).argmax(1) == y).float().mean() > 0.9
    # the keys are the routing readout's class columns: the index ranks classes by routing logit
    route, cands = model.candidate_tasks(x)
    assert torch.equal(cands[:, 0], model.class_task[route.argmax(1)])


def test_growing_pool_predicts_with_its_task_from_one_routing(backbone, stream, h):
    model = h.build("growing_pool", backbone, candidates=2)
    h.run_stream(model, stream, steps=3)
    model.eval()
    x, _ = _all(stream)
    logits, tasks = model.predict_with_task(x)
    assert torch.equal(logits, model(x)) and torch.equal(tasks, model.predict_task(x))


def test_growing_pool_readouts_read_the_last_layers(backbone, stream, h):
    model = h.build("growing_pool", backbone, layers=2)
    h.run_stream(model, stream, steps=3)
    d = backbone.hidden_size
    assert model.route_stats.projection.shape[0] == model.prompted_stats.projection.shape[0] == 2 * d
    assert model.head.in_features == d  # the head that trains the prompts reads the last layer
    x, y = _all(stream)
    expected = model.route_stats.expand(backbone.query_features(x, layers=2)).float() @ model.route_readout
    route, _ = model.candidate_tasks(x)
    assert torch.allclose(route, expected, atol=1e-5)
    assert (model(x).argmax(1) == y).float().mean() > 0.9


def test_growing_pool_scores_only_the_candidate_tasks(backbone, stream, h):
    x, _ = _all(stream)
    for m in (1, 2, 3):
        model = h.build("growing_pool", backbone, candidates=m)
        h.run_stream(model, stream, steps=3)
        finite = torch.isfinite(model(x))
        assert finite.sum(1).eq(2 * m).all()  # every candidate task's two classes, nothing else
        _, cands = model.candidate_tasks(x)
        assert all(len(set(row)) == m for row in cands.tolist())


def test_growing_pool_fusion_weight_zero_is_the_routing_classifier(backbone, stream, h):
    model = h.build("growing_pool", backbone, fusion_weight=0.0, candidates=3)
    h.run_stream(model, stream, steps=3)
    x, _ = _all(stream)
    route, _ = model.candidate_tasks(x)
    assert torch.equal(model(x).argmax(1), route.argmax(1))


def test_growing_pool_cross_task_passes_add_samples_through_earlier_tasks_prompts(backbone, stream, h):
    plain = h.build("growing_pool", backbone, cross_task_passes=0)
    h.run_stream(plain, stream, steps=3)
    crossed = h.build("growing_pool", backbone, cross_task_passes=2)
    seen = []
    original = crossed._readout_features
    crossed._readout_features = lambda inputs, tasks: seen.append(tasks.clone()) or original(inputs, tasks)
    h.run_stream(crossed, stream, steps=3)
    # experience e's samples pass through its own prompts, then through min(2, e) earlier tasks'
    per_class = stream[0][2].eq(0).sum().item()
    counts = crossed.prompted_stats.class_counts / per_class
    assert counts.tolist() == [1, 1, 2, 2, 3, 3]
    assert plain.prompted_stats.class_counts.tolist() == [per_class] * 6
    assert seen[-3].eq(2).all() and all(int(t.max()) < 2 for t in seen[-2:])  # last freeze: own, then earlier
    # the routing readout (and so the keys) does not change: only the prompted readout sees the extra passes
    torch.testing.assert_close(crossed.route_readout, plain.route_readout)
    assert not torch.allclose(crossed.prompted_readout, plain.prompted_readout)


def test_growing_pool_logits_under_equal_the_logits_of_each_setting(backbone, stream, h):
    """The prompted passes are shared between variants: each equals a forward pass with its options."""
    x, _ = _all(stream)
    model = h.build("growing_pool", backbone)
    h.run_stream(model, stream, steps=3)
    variants = [{"candidates": m, "fusion_weight": w} for m in (3, 1, 2) for w in (0.0, 0.5, 2.0)]
    kept = model.config
    together = model.logits_under(x, variants)
    assert model.config is kept
    for variant, logits in zip(variants, together, strict=True):
        model.config = dataclasses.replace(kept, **variant)
        assert torch.equal(logits, model(x)), variant
    model.config = kept
    assert torch.equal(model.logits_under(x, [{"prompted_ridge": 5.0}])[0], model(x))  # the base path
    assert model.config is kept
    with pytest.raises(ValueError, match="candidates"):
        model.logits_under(x, [{"candidates": 0}])
    assert model.config is kept


def test_growing_pool_predicts_during_its_first_experience(backbone, stream, h):
    model = h.build("growing_pool", backbone)
    with pytest.raises(RuntimeError, match="begin_experience"):
        model(stream[0][1])
    model.begin_experience(0, stream[0][0])
    model.eval()
    assert model.predict_task(stream[0][1]).eq(0).all()
    assert torch.isfinite(model(stream[0][1])[:, :2]).all()


def test_growing_pool_evaluation_computes_each_input_and_frozen_task_once(backbone, stream, h):
    model = h.build("growing_pool", backbone, candidates=2)
    h.run_stream(model, stream[:2], steps=3)
    model.eval()
    x, _ = _all(stream[:2])
    n = len(x["input_ids"])
    with torch.no_grad():
        first = model(x)
        cached = model._eval_features.info()
        assert cached["size"] == 2 * n and cached["hits"] == 0  # every input under both frozen tasks
        again = model(x)
        assert model._eval_features.info()["hits"] == 2 * n
        model._eval_features.clear()
        model._eval_features.max_bytes = 0  # nothing kept: every feature computed again
        fresh = model(x)
    assert torch.equal(first, again) and torch.equal(first, fresh)
    assert len(model._eval_features) == 0


def cached_bytes(model):
    return sum(r.numel() * r.element_size() for r in model._eval_features._rows._rows.values())


def test_growing_pool_keeps_no_features_of_the_open_task_or_of_training(backbone, stream, h):
    model = h.build("growing_pool", backbone, candidates=2)
    h.run_stream(model, stream[:1], steps=3)
    model.begin_experience(1, stream[1][0])  # task 1 is open: its prompts still change
    model.eval()
    x = stream[1][1]
    with torch.no_grad():
        tasks = torch.tensor([0, 1] * (len(x["input_ids"]) // 2))
        model._readout_features(x, tasks)
    assert len(model._eval_features) == model._eval_features.info()["misses"] == int((tasks == 0).sum())
    model.train()  # training passes (the end-of-experience ones too) neither read nor keep
    with torch.no_grad():
        model._readout_features(x, torch.zeros_like(tasks))
    assert model._eval_features.info() == {"size": 8, "hits": 0, "misses": 8, "bytes": cached_bytes(model)}


def test_growing_pool_statistics_count_each_sample_once(backbone, stream, h):
    """Three epochs over the same data give the statistics of one: samples are kept once."""
    classes, x, y = stream[0]
    models = []
    for epochs in (1, 3):
        model = h.build("growing_pool", backbone)  # same seed: same projections and prompts
        models.append(model)
        model.begin_experience(0, classes)
        for _ in range(epochs):
            model.observe(x, y)
        model.end_experience(0)
    once, thrice = models
    assert once.route_stats.class_counts.sum() == x["input_ids"].shape[0]
    assert torch.equal(once.route_stats.gram, thrice.route_stats.gram)
    assert torch.equal(once.prompted_stats.gram, thrice.prompted_stats.gram)


def test_feature_collector_replays_kept_inputs_shortest_first_without_padding(backbone):
    ids = torch.tensor([[101, 5, 6, 102, 0], [101, 7, 102, 0, 0], [101, 8, 9, 102, 0]])
    inputs = {"input_ids": ids, "attention_mask": (ids > 0).long()}
    collector = FeatureCollector(keep_inputs=True)
    collector.add(inputs, torch.zeros(3, 4), torch.tensor([1, 0, 2]))
    (batch, targets), = list(collector.input_batches(8))
    assert targets.tolist() == [0, 1, 2]  # the shortest first; rows of one length as first seen
    assert batch["input_ids"].tolist() == [[101, 7, 102, 0], [101, 5, 6, 102], [101, 8, 9, 102]]
    assert torch.allclose(backbone.query_features(batch, use_cache=False),
                          backbone.query_features(inputs, use_cache=False)[[1, 0, 2]], atol=1e-5)
    assert next(collector.input_batches(1))[0]["input_ids"].tolist() == [[101, 7, 102]]  # a batch of one: no padding


def test_feature_collector_counts_a_sentence_once_whatever_the_padding_of_its_batch():
    from cl_prompts.data.tensors import trim_padding

    ids = torch.tensor([[101, 5, 102, 0, 0, 0], [101, 7, 8, 9, 10, 102]])
    batch = {"input_ids": ids, "attention_mask": (ids > 0).long()}
    collector = FeatureCollector()
    collector.add(trim_padding(batch), torch.zeros(2, 4), torch.tensor([0, 1]))  # width 6
    alone = trim_padding({k: v[:1] for k, v in batch.items()})  # the next epoch: width 3
    assert alone["input_ids"].shape == (1, 3)
    collector.add(alone, torch.ones(1, 4), torch.tensor([0]))
    assert len(collector) == 2
    feats, targets = collector.tensors()
    assert targets.tolist() == [0, 1] and feats.sum() == 0  # the first-seen copy is kept
    other = {"input_ids": torch.tensor([[101, 6, 102]]), "attention_mask": torch.ones(1, 3, dtype=torch.long)}
    collector.add(other, torch.ones(1, 4), torch.tensor([0]))
    assert len(collector) == 3


def test_dualprompt_trains_the_true_tasks_e_prompt(backbone, stream, h):
    model = h.build("dualprompt", backbone)
    h.run_experience(model, 0, *stream[0], steps=2)
    model.begin_experience(1, stream[1][0])
    model.training_loss(stream[1][1], stream[1][2]).backward()
    assert model.pool.keys.grad is not None and model.pool.keys.grad.abs().sum() > 0
    assert model.g_prompt.grad is not None
    assert model.pool.frozen_prompts.shape == (1, 2 * 3, 32)  # (tasks, e_layers * 2 * e_length, D)


def test_gram_schmidt_rows_are_orthonormal_to_old_and_new():
    old = gram_schmidt(torch.empty(0, 16), 4)
    new = gram_schmidt(old, 5)
    both = torch.cat([old, new])
    assert torch.allclose(both @ both.T, torch.eye(9), atol=1e-5)
    over = gram_schmidt(both, 10)  # 19 rows cannot be orthogonal in 16 dims: the rest are unit rows
    assert torch.allclose(over.norm(dim=1), torch.ones(10), atol=1e-5)


def test_coda_prompt_new_components_start_orthogonal_and_old_freeze(backbone, stream, h):
    model = h.build("coda_prompt", backbone)
    h.run_experience(model, 0, *stream[0], steps=3)
    model.begin_experience(1, stream[1][0])
    pool = model.pools[0]
    keys = torch.cat([pool.frozen_keys, pool.keys.detach()])  # (6, D): 3 trained + 3 new
    gram = F_normalize(keys[3:]) @ F_normalize(keys[:3]).T
    # new keys are orthogonal to the old (trained) keys they were built against
    assert gram.abs().max() < 1e-4
    assert model.attention[0].frozen.shape == (3, 32) and model.attention[0].current.shape == (3, 32)
    ids = {id(p) for p in model.trainable_parameters()}
    assert id(pool.keys) in ids and all(id(t) not in ids for t in (pool.frozen_keys, model.attention[0].frozen))


def F_normalize(t):
    return torch.nn.functional.normalize(t, dim=1)


def test_coda_prompt_ortho_penalty_adds_to_the_loss(backbone, stream, h):
    torch.manual_seed(0)
    plain = h.build("coda_prompt", backbone)
    torch.manual_seed(0)
    ortho = h.build("coda_prompt", backbone, ortho_mu=1.0)
    for m in (plain, ortho):
        torch.manual_seed(1)
        m.begin_experience(0, stream[0][0])
    with torch.no_grad():
        ortho.pools[0].keys.add_(0.5)  # break orthogonality: the penalty must see it
        plain.pools[0].keys.add_(0.5)
    assert ortho.training_loss(stream[0][1], stream[0][2]) > plain.training_loss(stream[0][1], stream[0][2])


def test_linear_probe_masking_decides_which_rows_train(backbone, stream, h):
    masked = h.build("linear_probe", backbone)
    unmasked = h.build("linear_probe", backbone, mask_absent=False)
    for m in (masked, unmasked):
        h.run_experience(m, 0, *stream[0], steps=2)
        m.begin_experience(1, stream[1][0])
    assert len(masked.trainable_parameters()) == 2  # the new block's weight and bias
    assert len(unmasked.trainable_parameters()) == 4  # every block seen so far


def test_joint_memory_deduplicates_and_replays(backbone, stream, h):
    model = h.build("joint", backbone)
    classes, x, y = stream[0]
    model.begin_experience(0, classes)
    for _ in range(3):
        model.training_loss(x, y)
    model.end_experience(0)
    assert model.memory_features.shape == (16, 32) and model.memory_targets.tolist() == y.tolist()
    h.run_experience(model, 1, *stream[1], steps=20)
    h.run_experience(model, 2, *stream[2], steps=20)
    xa, ya = _all(stream)
    acc_first = (model.predict(xa)[:16] == ya[:16]).float().mean()
    assert acc_first > 0.8  # replay keeps experience 0 (sequential linear_probe unmasked would not)


def test_feature_collector_orders_and_refuses_empty():
    c = FeatureCollector()
    x = {"input_ids": torch.tensor([[1, 2], [3, 4], [1, 2]])}
    c.add(x, torch.arange(6.0).reshape(3, 2), torch.tensor([0, 1, 0]))
    f, t = c.tensors()
    assert f.tolist() == [[0.0, 1.0], [2.0, 3.0]] and t.tolist() == [0, 1]
    c.clear()
    try:
        c.tensors()
    except ValueError as err:
        assert "no training sample" in str(err)
    else:  # pragma: no cover
        raise AssertionError("expected ValueError")


def test_finetune_copies_and_unfreezes_a_private_backbone(backbone, stream, h):
    model = h.build("finetune", backbone)
    assert model.backbone is not backbone
    model.begin_experience(0, stream[0][0])
    n_enc = len(list(model.backbone.parameters()))
    assert len(model.trainable_parameters()) == n_enc + 2
    assert all(not p.requires_grad for p in backbone.parameters())


def test_ncm_prototypes_are_batching_invariant(backbone, stream, h):
    a, b = h.build("ncm", backbone), h.build("ncm", backbone)
    classes, x, y = stream[0]
    a.begin_experience(0, classes)
    a.observe(x, y)
    b.begin_experience(0, classes)
    for i in range(0, 16, 5):
        b.observe({k: v[i : i + 5] for k, v in x.items()}, y[i : i + 5])
    assert torch.allclose(a.prototypes(), b.prototypes(), atol=1e-6)
    assert torch.equal(a.class_counts[:2], torch.tensor([8.0, 8.0], dtype=torch.float64))


def test_growing_pool_recycles_the_prompts_of_the_task_the_new_data_is_routed_to(backbone, stream, h):
    model = h.build("growing_pool", backbone, init_from_nearest=True, init_from_previous=False)
    h.run_stream(model, stream[:2], steps=5)
    frozen = model.pool.frozen_prompts.clone()  # (2, L, D): tasks 0 and 1
    classes, x, y = stream[2]
    # the new task's data, routed among the earlier tasks: which one is nearest
    expected = model.nearest_task(x)
    model.begin_experience(2, classes)
    assert model.recycled_from is None
    assert not torch.equal(model.pool.prompts[0], frozen[expected])  # a random start until the first batch
    model.train()
    model.training_loss(x, y)  # the first training batch copies the nearest task's prompts in place
    assert model.recycled_from == expected
    assert torch.equal(model.pool.prompts.detach()[0], frozen[expected])
    assert torch.equal(model.pool.frozen_prompts, frozen)  # the source stays frozen and unchanged
    model.training_loss(x, y)  # once per task
    model.end_experience(2)


def test_prompt_recycling_needs_an_open_task_of_the_same_size():
    from cl_prompts.pool import PoolConfig, PromptPool

    pool = PromptPool(PoolConfig(embed_dim=4, prompt_length=2, top_k=1, index="torch"))
    with pytest.raises(RuntimeError, match="no open task"):
        pool.copy_prompts_from(0)
    pool.add_task(2)
    pool.add_task(1)
    with pytest.raises(ValueError, match="task 0 holds 2 prompts, the open task 1"):
        pool.copy_prompts_from(0)
    with pytest.raises(ValueError, match="task 1 is the open task itself"):
        pool.copy_prompts_from(1)
    pool.add_task(2)
    pool.copy_prompts_from(0)
    assert torch.equal(pool.prompts.detach(), pool.frozen_prompts[:2])
