import pytest

from cl_prompts.data import (
    TextDataset,
    TextSplit,
    class_order,
    split_classes,
    synthetic_text_dataset,
    validate_experiences,
)


def _ds(**kw):
    args = dict(
        train=TextSplit(["a", "b", "c", "d"], [0, 1, 2, 3]),
        test=TextSplit(["e", "f"], [0, 3]),
        class_names=["w", "x", "y", "z"],
        experiences=[[0, 1], [2, 3]],
    )
    args.update(kw)
    return TextDataset(**args)


def test_class_order_is_seeded_permutation():
    a, b = class_order(150, 3), class_order(150, 3)
    assert a == b and sorted(a) == list(range(150))
    assert a != class_order(150, 4)
    assert a != list(range(150))


def test_split_classes_near_equal_in_order():
    groups = split_classes(list(range(10)), 3)
    assert groups == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    with pytest.raises(ValueError, match="num_experiences"):
        split_classes([0, 1], 3)
    with pytest.raises(ValueError, match="num_experiences"):
        split_classes([0, 1], 0)


def test_validate_experiences_errors():
    assert validate_experiences([[1], [0]], 2) == [[1], [0]]
    with pytest.raises(ValueError, match="disjoint"):
        validate_experiences([[0, 1], [1]], 2)
    with pytest.raises(ValueError, match="cover"):
        validate_experiences([[0]], 2)
    with pytest.raises(ValueError, match="empty"):
        validate_experiences([[0, 1], []], 2)
    with pytest.raises(ValueError, match="experiences"):
        validate_experiences([], 2)


def test_textsplit_validation():
    with pytest.raises(ValueError, match="same length"):
        TextSplit(["a"], [0, 1])
    with pytest.raises(TypeError, match="labels"):
        TextSplit(["a"], ["x"])
    with pytest.raises(TypeError, match="texts"):
        TextSplit([1], [0])
    with pytest.raises(ValueError, match=">= 0"):
        TextSplit(["a"], [-1])


def test_dataset_rejects_unseen_test_label_and_empty():
    with pytest.raises(ValueError, match="never seen in train.*'y'"):
        _ds(test=TextSplit(["e"], [2]), train=TextSplit(["a", "b"], [0, 1]))
    with pytest.raises(ValueError, match="train must not be empty"):
        _ds(train=TextSplit([], []))
    with pytest.raises(ValueError, match="len\\(class_names\\)"):
        _ds(train=TextSplit(["a"], [7]))


def test_regroup_and_subset():
    ds = synthetic_text_dataset(num_classes=6, num_experiences=3, train_per_class=10)
    r = ds.regroup(num_experiences=2)
    assert r.experiences == [[0, 1, 2], [3, 4, 5]]
    s = ds.regroup(class_order_seed=5)
    assert [len(e) for e in s.experiences] == [2, 2, 2]
    assert s.class_order() == class_order(6, 5)
    sub = ds.subset(3, test_per_class=1)
    assert len(sub.train) == 18 and len(sub.test) == 6
    assert all(sub.train.labels.count(c) == 3 for c in range(6))
    # a subset keeps only real samples of the original split, with their labels
    pairs = set(zip(ds.train.texts, ds.train.labels, strict=True))
    assert set(zip(sub.train.texts, sub.train.labels, strict=True)) <= pairs
    with pytest.raises(ValueError, match="per_class"):
        ds.subset(0)


def test_synthetic_is_deterministic_and_keyworded():
    a, b = synthetic_text_dataset(seed=1), synthetic_text_dataset(seed=1)
    assert a.train.texts == b.train.texts
    for text, label in zip(a.train.texts, a.train.labels, strict=True):
        assert a.class_names[label] in text.split()
    with pytest.raises(ValueError, match="num_classes"):
        synthetic_text_dataset(num_classes=100)


def test_experience_names_come_from_the_benchmark_or_the_classes():
    ds = TextDataset(TextSplit(["a", "b", "c"], [0, 1, 2]), TextSplit(["a"], [0]), ["x", "y", "z"],
                     [[0, 1], [2]], info={"experience_names": ["first", "second"]})
    assert ds.experience_names() == ["first", "second"]
    assert ds.subset(1).experience_names() == ["first", "second"]
    regrouped = ds.regroup(num_experiences=3)
    assert regrouped.experience_names() == ["x", "y", "z"]  # the old names do not fit new groups
    assert ds.regroup(num_experiences=1).experience_names() == ["x +2"]


def test_first_experiences_cuts_the_stream_and_renumbers_its_classes():
    from cl_prompts.data import synthetic_text_dataset

    data = synthetic_text_dataset(num_classes=6, num_experiences=3, calibration_per_class=2)
    data = data.regroup(class_order_seed=1)  # classes not in id order: the renumbering matters
    first = data.first_experiences(2)
    kept = data.experiences[0] + data.experiences[1]
    assert first.class_names == [data.class_names[c] for c in kept]
    assert first.experiences == [[0, 1], [2, 3]] and first.num_classes == 4
    for split, original in ((first.train, data.train), (first.test, data.test),
                            (first.calibration, data.calibration)):
        expected = [(t, kept.index(y)) for t, y in zip(original.texts, original.labels, strict=True) if y in kept]
        assert list(zip(split.texts, split.labels, strict=True)) == expected
    with pytest.raises(ValueError, match=r"n must be an int in 1..3, got 4"):
        data.first_experiences(4)


def test_few_shot_cuts_one_experience_and_keeps_the_rest():
    from cl_prompts.data import synthetic_text_dataset

    data = synthetic_text_dataset(num_classes=6, num_experiences=3, train_per_class=8)
    few = data.few_shot(1, per_class=3, seed=2)
    counts = {c: few.train.labels.count(c) for c in range(6)}
    assert counts == {0: 8, 1: 8, 2: 3, 3: 3, 4: 8, 5: 8}
    assert few.test.texts == data.test.texts and few.experiences == data.experiences
    rows = list(zip(few.train.texts, few.train.labels, strict=True))
    assert [r for r in rows if r[1] not in (2, 3)] == [r for r in zip(data.train.texts, data.train.labels, strict=True)
                                                     if r[1] not in (2, 3)]
    assert few.few_shot(1, per_class=3, seed=2).train.texts == few.train.texts  # seeded
    with pytest.raises(ValueError, match=r"experience must be an int in 0..2, got 3"):
        data.few_shot(3, per_class=3)
