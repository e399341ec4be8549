import json

import pytest

from cl_prompts.data import ENV_VAR, find_clinc150, load_clinc150


def _write_mini(root):
    domains = {"d0": ["i0", "i1"], "d1": ["i2", "i3"], "d2": ["i4", "i5"]}
    train = [[f"train {i} {k}", f"i{i}"] for i in range(6) for k in range(4)]
    test = [[f"test {i} {k}", f"i{i}"] for i in range(6) for k in range(2)]
    root.mkdir(parents=True, exist_ok=True)
    (root / "domains.json").write_text(json.dumps(domains))
    (root / "data_full.json").write_text(json.dumps({"train": train, "test": test, "val": []}))
    return domains


def test_domain_order_and_class_ids(tmp_path):
    _write_mini(tmp_path / "clinc150")
    ds = load_clinc150(tmp_path / "clinc150")
    assert ds.class_names == ["i0", "i1", "i2", "i3", "i4", "i5"]
    assert ds.experiences == [[0, 1], [2, 3], [4, 5]]
    assert ds.experience_names() == ["d0", "d1", "d2"]  # plots name the domains
    assert ds.train.labels[:4] == [0, 0, 0, 0] and ds.train.texts[4] == "train 1 0"
    assert len(ds.test) == 12


def test_env_var_root(tmp_path, monkeypatch):
    _write_mini(tmp_path / "clinc150")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert find_clinc150() == tmp_path / "clinc150"


def test_missing_names_paths_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as e:
        load_clinc150(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(e.value) and ENV_VAR in str(e.value)


def test_regroup_seed_and_quick(tmp_path):
    _write_mini(tmp_path)
    ds = load_clinc150(tmp_path, num_experiences=2, class_order_seed=0, per_class=2, test_per_class=1)
    assert [len(e) for e in ds.experiences] == [3, 3]
    assert sorted(c for e in ds.experiences for c in e) == list(range(6))
    assert len(ds.train) == 12 and len(ds.test) == 6


@pytest.mark.slow
def test_real_clinc150_is_clinc150_10():
    ds = load_clinc150()
    assert (len(ds.train), len(ds.test), ds.num_classes) == (15000, 4500, 150)
    assert ds.num_experiences == 10 and all(len(e) == 15 for e in ds.experiences)
    assert ds.info["domains"][0] == "banking"
    assert all(ds.train.labels.count(c) == 100 for c in range(0, 150, 37))


def test_eval_split_val_uses_val_and_never_test(tmp_path):
    root = tmp_path / "clinc150"
    _write_mini(root)
    full = json.loads((root / "data_full.json").read_text())
    full["val"] = [[f"val {i}", f"i{i}"] for i in range(6)]
    del full["test"]  # a dataset without its test list still loads for validation
    (root / "data_full.json").write_text(json.dumps(full))
    ds = load_clinc150(root, eval_split="val")
    assert ds.test.texts == [f"val {i}" for i in range(6)] and ds.test.labels == list(range(6))
    assert len(ds.train) == 24 and ds.info["eval_split"] == "val"
    with pytest.raises(ValueError, match="eval_split"):
        load_clinc150(root, eval_split="dev")


def test_find_data_folder_looks_under_the_environment_variable_first(tmp_path, monkeypatch):
    from cl_prompts.data import find_data_folder

    (tmp_path / "hwu64").mkdir()
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert find_data_folder("hwu64") == tmp_path / "hwu64"
    with pytest.raises(FileNotFoundError, match=r"nope not found: looked in .*nope"):
        find_data_folder("nope", root=tmp_path / "nope")
