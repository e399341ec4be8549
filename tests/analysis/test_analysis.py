"""cl_prompts.analysis on tiny trained runs: routing records, usage, task identification,
nearest tokens, key maps and their plots."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cl_prompts.analysis import (
    collect_routing,
    key_map,
    nearest_tokens,
    plot_key_map,
    plot_prompt_usage,
    plot_task_identification,
    prompt_usage,
    task_identification,
)
from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.data import synthetic_text_dataset
from cl_prompts.methods import load_model
from cl_prompts.run.checkpoints import latest_model_dir

TINY = {
    "growing_pool": {"projection_dim": 64, "ridge": 1.0, "prompted_ridge": 1.0, "prompt_length": 2},
    "l2p": {"pool_size": 6, "prompt_length": 2, "top_k": 2},
    "dualprompt": {"g_layers": (0,), "e_layers": (1,), "g_length": 2, "e_length": 3},
    "prompt_tuning": {"prompt_length": 3},
    "ncm": {},
}


def _data():
    return synthetic_text_dataset(num_classes=8, num_experiences=4, train_per_class=6, test_per_class=3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_run):
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for method, options in TINY.items():
        results = tiny_run(root / method, method, options, _data())
        out[method] = (load_model(latest_model_dir(root / method), tiny_text_backbone()), results)
    return out


def test_the_record_holds_every_test_sample_with_its_experience(trained):
    model, _ = trained["growing_pool"]
    data = _data()
    record = collect_routing(model, data)
    assert len(record.labels) == len(data.test) and sorted(record.labels) == sorted(data.test.labels)
    owner = {c: e for e, cs in enumerate(data.experiences) for c in cs}
    assert [owner[int(c)] for c in record.labels] == record.experience.tolist()
    m = min(model.config.candidates, 4)  # candidate tasks per input (4 experiences), one prompt each
    assert record.prompt_ids.shape == record.key_scores.shape == (len(data.test), m)
    assert record.queries.shape == (len(data.test), 64)  # the routing readout's random features
    assert ((record.routed >= 0) & (record.routed < 4)).all()
    first = collect_routing(model, data, upto=0)
    assert set(first.experience.tolist()) == {0} and first.experiences == data.experiences[:1]
    assert task_identification(first)["matrix"].shape == (1, 1)


def test_task_identification_matches_the_runners_task_id_accuracy(trained):
    model, results = trained["dualprompt"]
    record = collect_routing(model, _data())
    tid = task_identification(record)
    assert tid["matrix"].shape == (4, 4)
    np.testing.assert_allclose(tid["matrix"].sum(axis=1), 1.0)
    assert tid["accuracy"] == pytest.approx(float((record.routed == record.experience).mean()))
    # the diagonal is what the runner reports as task-id accuracy after the last experience
    np.testing.assert_allclose(100 * tid["per_experience"], results["task_id_accuracy_matrix"][-1])


def test_prompt_usage_counts_every_selection(trained):
    model, _ = trained["l2p"]
    record = collect_routing(model, _data())
    usage = prompt_usage(record, num_prompts=6)
    n = len(record.labels)
    assert usage["per_experience"].shape == (4, 6) and usage["per_class"].shape == (8, 6)
    assert usage["per_experience"].sum() == usage["per_class"].sum() == n * 2  # top_k = 2 each
    np.testing.assert_allclose(usage["share"].sum(axis=1), 2.0)  # two prompts per input
    only_first = prompt_usage(record, num_prompts=6, top=1)
    assert only_first["per_experience"].sum() == n
    for c in range(8):
        assert usage["per_class"][c].sum() == 2 * int((record.labels == c).sum())


def test_a_shared_pool_and_a_method_without_prompts_are_refused_by_name(trained):
    record = collect_routing(trained["l2p"][0], _data())
    assert (record.routed == -1).all()
    with pytest.raises(ValueError, match="shared pool"):
        task_identification(record)
    with pytest.raises(ValueError, match="'ncm' has no prompt routing"):
        collect_routing(trained["ncm"][0], _data())
    with pytest.raises(ValueError, match="upto must be an experience the model has seen"):
        collect_routing(trained["l2p"][0], _data(), upto=4)


def test_a_prompt_set_to_a_word_embedding_reads_as_that_word(trained):
    model, _ = trained["prompt_tuning"]
    vocab = model.backbone.model.get_input_embeddings().weight
    token_id = 7
    word = model.backbone.tokenizer.convert_ids_to_tokens([token_id])[0]
    saved = model.prompt.detach().clone()
    try:
        with torch.no_grad():
            model.prompt[1] = 3.0 * vocab[token_id]  # the cosine ignores the scale
        tables = nearest_tokens(model, k=4)
    finally:
        with torch.no_grad():
            model.prompt.copy_(saved)
    assert len(tables) == 1 and tables[0].experience == -1
    assert len(tables[0].tokens) == 3 and all(len(row) == 4 for row in tables[0].tokens)
    assert tables[0].tokens[1][0] == word and tables[0].cosine[1, 0] == pytest.approx(1.0, abs=1e-5)
    assert (np.diff(tables[0].cosine, axis=1) <= 1e-6).all()  # nearest first
    assert word in tables[0].table()


def test_nearest_tokens_of_a_growing_pool_name_each_prompts_experience(trained):
    model, _ = trained["growing_pool"]
    tables = nearest_tokens(model, k=2)
    assert [t.experience for t in tables] == [0, 1, 2, 3]  # one prompt per task
    with pytest.raises(ValueError, match="'dualprompt' puts no prompts in front of the input tokens"):
        nearest_tokens(trained["dualprompt"][0])


def test_key_map_projects_keys_and_queries_without_touching_the_global_rng(trained):
    model, _ = trained["growing_pool"]
    record = collect_routing(model, _data())
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    data = key_map(model, record, max_queries=10)
    assert torch.equal(torch.rand(3), expected)
    assert data["keys"].shape == (8, 2) and sorted(data["key_experience"].tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert data["queries"].shape == (10, 2) and data["query_experience"].shape == (10,)
    assert 0 <= data["explained"][1] <= data["explained"][0] <= 1
    again = key_map(model, record, max_queries=10)
    np.testing.assert_allclose(np.abs(again["keys"]), np.abs(data["keys"]), atol=1e-5)  # same seed: same map
    dual, _ = trained["dualprompt"]
    with pytest.raises(ValueError, match="keys are 32 wide but the queries 64"):
        key_map(dual, record)


def test_plots_draw_the_data_on_the_given_axes(trained):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    model, _ = trained["growing_pool"]
    record = collect_routing(model, _data())
    fig, axes = plt.subplots(1, 3)
    tid = task_identification(record)
    assert plot_task_identification(tid["matrix"], names=list("abcd"), ax=axes[0]) is axes[0]
    assert len(axes[0].texts) == 16 and [t.get_text() for t in axes[0].get_yticklabels()] == list("abcd")
    assert plot_prompt_usage(prompt_usage(record)["share"], ax=axes[1]) is axes[1]
    assert plot_key_map(key_map(model, record), ax=axes[2]) is axes[2]
    assert len(axes[2].collections) == 8  # 4 query clouds and 4 key sets
    with pytest.raises(ValueError, match="names must name each of the 4 experiences"):
        plot_task_identification(tid["matrix"], names=["a"])
    plt.close(fig)
