import pytest
import torch

from cl_prompts.data import class_order, synthetic_text_dataset
from cl_prompts.integrations.avalanche import (
    benchmark_from_class_groups,
    clinc150_benchmark,
    text_benchmark,
)


def test_text_benchmark_structure(text_backbone, toy_data):
    bm = text_benchmark(toy_data, text_backbone)
    assert len(bm.train_stream) == 3 and len(bm.test_stream) == 3
    assert bm.experiences_classes == [[0, 1], [2, 3], [4, 5]] and bm.n_classes == 6
    for eid, (tr, te) in enumerate(zip(bm.train_stream, bm.test_stream, strict=True)):
        assert tr.current_experience == eid and tr.task_label == 0
        assert sorted(tr.classes_in_this_experience) == [2 * eid, 2 * eid + 1]
        assert len(tr.dataset) == 16 and len(te.dataset) == 8
        x, y, t = tr.dataset[0]
        assert set(x) == {"input_ids", "attention_mask"} and x["input_ids"].shape == (16,)
        assert y in (2 * eid, 2 * eid + 1) and t == 0
    # the sample is the tokenized text of the right class
    x, y, _ = bm.test_stream[1].dataset[0]
    ids = text_backbone.tokenize([toy_data.class_names[y]])["input_ids"][0, 1]
    assert ids in x["input_ids"]


def test_regroup_seed_subset_and_task_labels(text_backbone):
    ds = synthetic_text_dataset(num_classes=6, num_experiences=3, train_per_class=8)
    bm = text_benchmark(ds, text_backbone, num_experiences=2, class_order_seed=1, per_class=3, task_labels=True)
    assert bm.classes_order == class_order(6, 1)
    assert [len(e.dataset) for e in bm.train_stream] == [9, 9]
    assert [e.task_label for e in bm.train_stream] == [0, 1]
    assert set(bm.train_stream[1].classes_in_this_experience) == set(class_order(6, 1)[3:])


def test_bad_inputs(text_backbone, vision_backbone, toy_data):
    with pytest.raises(TypeError, match="TextDataset"):
        text_benchmark([("a", 0)], text_backbone)
    with pytest.raises(TypeError, match="text backbone"):
        text_benchmark(toy_data, vision_backbone)
    with pytest.raises(ValueError, match="num_experiences"):
        text_benchmark(toy_data, text_backbone, num_experiences=7)
    with pytest.raises(FileNotFoundError, match="CLINC150 not found"):
        clinc150_benchmark(text_backbone, root="/nonexistent/clinc150")
    data = torch.utils.data.TensorDataset(torch.zeros(4, 2), torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="train_targets"):
        benchmark_from_class_groups(data, [0, 0, 1], data, [0, 0, 1, 1], [[0], [1]])
    with pytest.raises(ValueError, match="cover"):
        benchmark_from_class_groups(data, [0, 0, 1, 1], data, [0, 0, 1, 1], [[0]])


@pytest.mark.slow
def test_clinc150_benchmark_real(text_backbone):
    bm = clinc150_benchmark(text_backbone, per_class=4, test_per_class=2)
    assert len(bm.train_stream) == 10 and bm.n_classes == 150
    assert sorted(bm.train_stream[0].classes_in_this_experience) == list(range(15))
    assert len(bm.train_stream[0].dataset) == 60 and len(bm.test_stream[9].dataset) == 30
