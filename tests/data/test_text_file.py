import csv
import json

import pytest

from cl_prompts.data import load_text_file


def _write_csv(path, rows, header=("text", "label"), delimiter=","):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def _rows(n_classes=4, per_class=5):
    return [(f"sample {k} of class {c}", f"c{c}") for c in range(n_classes) for k in range(per_class)]


def test_csv_stratified_split_and_experiences(tmp_path):
    p = _write_csv(tmp_path / "d.csv", _rows())
    ds = load_text_file(p, num_experiences=2)
    assert ds.class_names == ["c0", "c1", "c2", "c3"]
    assert ds.experiences == [[0, 1], [2, 3]]
    assert len(ds.train) == 16 and len(ds.test) == 4
    assert all(ds.test.labels.count(c) == 1 for c in range(4))
    assert not set(ds.train.texts) & set(ds.test.texts)
    assert load_text_file(p).test.texts == ds.test.texts  # seeded


def test_json_jsonl_tsv_and_test_path(tmp_path):
    recs = [{"utt": t, "y": int(lab[1:])} for t, lab in _rows(3, 4)]
    (tmp_path / "a.json").write_text(json.dumps(recs))
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in recs[:6]))
    ds = load_text_file(tmp_path / "a.json", "utt", "y", test_path=tmp_path / "b.jsonl", num_experiences=3)
    assert ds.class_names == ["0", "1", "2"] and len(ds.train) == 12 and len(ds.test) == 6
    assert ds.test.labels == [0, 0, 0, 0, 1, 1]
    t = _write_csv(tmp_path / "c.tsv", _rows(2, 3), delimiter="\t")
    assert load_text_file(t).num_classes == 2


def test_numeric_labels_sort_numerically(tmp_path):
    p = _write_csv(tmp_path / "n.csv", [(f"t{i}{k}", str(i)) for i in (10, 9, 2) for k in range(3)])
    assert load_text_file(p).class_names == ["2", "9", "10"]


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_text_file(tmp_path / "missing.csv")
    with pytest.raises(IsADirectoryError, match="directory"):
        load_text_file(tmp_path)
    p = _write_csv(tmp_path / "h.csv", _rows(), header=("sentence", "label"))
    with pytest.raises(ValueError, match="text_column='text'.*columns are"):
        load_text_file(p)
    with pytest.raises(ValueError, match="label_column='intent'"):
        load_text_file(p, "sentence", "intent")
    with pytest.raises(ValueError, match="no rows"):
        load_text_file(_write_csv(tmp_path / "e.csv", []))
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(ValueError, match="no rows"):
        load_text_file(tmp_path / "empty.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_text_file(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="row 1 has an empty"):
        load_text_file(_write_csv(tmp_path / "blank.csv", [("ok", "a"), ("", "b")]))
    with pytest.raises(ValueError, match="must end with"):
        load_text_file(_write_csv(tmp_path / "x.txt", _rows()))
    train = _write_csv(tmp_path / "tr.csv", _rows(2))
    test = _write_csv(tmp_path / "te.csv", [("new one", "c9")])
    with pytest.raises(ValueError, match="never seen in train.*c9"):
        load_text_file(train, test_path=test)
    with pytest.raises(ValueError, match="test_fraction"):
        load_text_file(train, test_fraction=1.5)
    with pytest.raises(ValueError, match="num_experiences"):
        load_text_file(train, num_experiences=3)


def test_eval_split_val_holds_out_train_rows_and_never_reads_the_test_file(tmp_path):
    p = _write_csv(tmp_path / "train.csv", _rows(per_class=10))
    missing_test = tmp_path / "absent.csv"  # would fail if it were read
    ds = load_text_file(p, test_path=missing_test, eval_split="val", val_fraction=0.2)
    assert len(ds.train) == 32 and len(ds.test) == 8
    assert all(ds.test.labels.count(c) == 2 for c in range(4))
    assert not set(ds.train.texts) & set(ds.test.texts)
    assert ds.name == tmp_path.name  # a generic stem takes the folder's name
    again = load_text_file(p, test_path=missing_test, eval_split="val", val_fraction=0.2)
    assert again.test.texts == ds.test.texts  # the same held-out rows every time


def test_eval_split_val_without_a_test_file_never_trains_on_test_rows(tmp_path):
    p = _write_csv(tmp_path / "d.csv", _rows(per_class=10))
    test_rows = set(load_text_file(p).test.texts)
    val = load_text_file(p, eval_split="val")
    assert not test_rows & (set(val.train.texts) | set(val.test.texts))


@pytest.mark.parametrize("bad", [{"eval_split": "dev"}, {"val_fraction": 0.0}, {"val_fraction": 1.5}])
def test_eval_split_options_are_checked(tmp_path, bad):
    p = _write_csv(tmp_path / "d.csv", _rows())
    with pytest.raises(ValueError, match="eval_split|val_fraction"):
        load_text_file(p, **bad)


def test_label_order_is_total_and_independent_of_the_process(tmp_path):
    """nan/inf labels (what pandas writes for a missing label) sort as text, after the numbers."""
    import subprocess
    import sys

    labels = ["nan", "10", "inf", "2", "b", "-inf", "a", "NaN"]
    p = _write_csv(tmp_path / "l.csv", [(f"t {lab} {k}", lab) for lab in labels for k in range(3)])
    expected = ["2", "10", "-inf", "NaN", "a", "b", "inf", "nan"]
    assert load_text_file(p).class_names == expected
    code = f"from cl_prompts.data import load_text_file; print(load_text_file({str(p)!r}).class_names)"
    # the three processes at once: each spends its second or so importing torch
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**__import__("os").environ, "PYTHONHASHSEED": str(seed)})
             for seed in (0, 1, 2)]
    seen = {p.communicate(timeout=120)[0] for p in procs}
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert seen == {f"{expected}\n"}


def test_tsv_quotes_are_text_and_a_bom_is_not_part_of_the_header(tmp_path):
    rows = [(f'say "hi {k}', "greet") for k in range(4)] + [(f"bye {k}", "leave") for k in range(4)]
    tsv = tmp_path / "q.tsv"
    tsv.write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows))
    ds = load_text_file(tsv, num_experiences=1)
    assert len(ds.train) + len(ds.test) == 8 and 'say "hi 0' in ds.train.texts + ds.test.texts
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufefftext,label\n".encode() + "".join(f"{t},{lab}\n" for t, lab in _rows()).encode())
    assert load_text_file(bom).num_classes == 4


def test_calibration_fraction_holds_out_in_scope_rows_from_training(tmp_path):
    p = _write_csv(tmp_path / "d.csv", _rows(per_class=10))
    plain = load_text_file(p)
    ds = load_text_file(p, calibration_fraction=0.25)
    assert plain.calibration is None and ds.test.texts == plain.test.texts  # the test split is unchanged
    assert all(ds.calibration.labels.count(c) == 2 for c in range(4))  # round(0.25 * 8) per class
    assert sorted(ds.train.texts + ds.calibration.texts) == sorted(plain.train.texts)
    assert not set(ds.train.texts) & set(ds.calibration.texts)
    with pytest.raises(ValueError, match=r"calibration_fraction must be in \[0, 1\), got 1.0"):
        load_text_file(p, calibration_fraction=1.0)


def test_written_csv_reads_back_and_is_not_overwritten(tmp_path):
    from cl_prompts.data import read_rows, synthetic_text_dataset, write_text_csv

    ds = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=3, test_per_class=2)
    path = write_text_csv(tmp_path / "toy.csv", [ds.train, ds.test], ds.class_names,
                          text_column="utterance", label_column="intent")
    texts, labels = read_rows(path, text_column="utterance", label_column="intent")
    assert texts == ds.train.texts + ds.test.texts
    assert labels == [ds.class_names[y] for y in ds.train.labels + ds.test.labels]
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="toy.csv exists"):
        write_text_csv(path, [ds.test], ds.class_names)
    assert path.read_bytes() == before  # what was there is kept
    write_text_csv(path, [ds.test], ds.class_names, overwrite=True)
    assert read_rows(path)[0] == ds.test.texts
