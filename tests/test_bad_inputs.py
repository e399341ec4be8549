"""One test per row of docs/bad_inputs.md: each bad input raises a clear error naming it,
and nothing the user saved is overwritten."""

import csv
import json
import warnings

import pytest
import torch

from cl_prompts.backbones import BackboneConfig, load_backbone
from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.cli import main
from cl_prompts.data import (
    TextDataset,
    TextSplit,
    load_clinc150,
    load_text_file,
    synthetic_text_dataset,
)
from cl_prompts.methods import build_model, load_model
from cl_prompts.pool import PoolConfig, PromptPool
from cl_prompts.run import RunConfig, run
from cl_prompts.run.checkpoints import load_checkpoint, save_checkpoint
from cl_prompts.run.loop import warn_truncated


@pytest.fixture
def pool():
    p = PromptPool(PoolConfig(embed_dim=8, prompt_length=2, top_k=2, index="torch"))
    p.add_task(num_prompts=3)
    return p


@pytest.fixture(scope="module")
def backbone():
    return tiny_text_backbone()


def _write_csv(path, rows, header=("text", "label")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(rows)
    return path


# ---------------------------------------------------------------- pool (rows 1-6)
def test_01_query_wrong_width(pool):
    with pytest.raises(ValueError, match=r"query must have shape \(B, 8\), got \(4, 16\)"):
        pool.select(torch.randn(4, 16))


def test_02_query_wrong_rank(pool):
    with pytest.raises(ValueError, match=r"query must have shape \(B, 8\)"):
        pool.select(torch.randn(8))


def test_03_nan_in_query(pool):
    q = torch.randn(2, 8)
    q[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        pool.select(q)


def test_04_top_k_larger_than_pool(pool):
    with pytest.raises(ValueError, match=r"k=5 is larger than the selectable pool \(3 prompts"):
        pool.select(torch.randn(2, 8), k=5)


def test_05_prompt_length_zero():
    with pytest.raises(ValueError, match="prompt_length must be > 0"):
        PoolConfig(embed_dim=8, prompt_length=0)


def test_06_unknown_index_name():
    # any faiss factory string is a valid config; the pool checks it when it builds the index
    with pytest.raises(ValueError, match="index must be 'flat', 'torch' or a faiss index_factory"):
        PromptPool(PoolConfig(embed_dim=8, index="NotAnIndex"))


# ---------------------------------------------------------------- methods, backbones (7-10)
def test_07_unknown_method(backbone):
    with pytest.raises(ValueError, match=r"unknown method 'nope'; valid methods: \[.*growing_pool"):
        build_model("nope", backbone, num_classes=4)


def test_08_unknown_method_option(backbone):
    with pytest.raises(TypeError, match=r"unknown config option\(s\) \['topk'\]"):
        build_model("growing_pool", backbone, num_classes=4, topk=3)


def test_09_backbone_type_not_supported(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(ValueError, match="unsupported backbone model_type 't5'"):
        load_backbone(BackboneConfig(name_or_path=str(tmp_path)))


def test_10_saved_method_on_another_backbone_width(tmp_path, backbone):
    model = build_model("ncm", backbone, num_classes=4)
    model.save_pretrained(tmp_path / "m")
    # same family and width (a fresh tiny backbone): loads
    assert load_model(tmp_path / "m", load_backbone(BackboneConfig(name_or_path="tiny-bert")))
    meta = json.loads((tmp_path / "m" / "method.json").read_text())
    meta["backbone"]["hidden_size"] = 384
    (tmp_path / "m" / "method.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="backbone mismatch"):
        load_model(tmp_path / "m", backbone)


# ---------------------------------------------------------------- data (11-18)
def test_11_missing_data_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file .*missing.csv"):
        load_text_file(tmp_path / "missing.csv")


def test_12_directory_where_a_file_is_expected(tmp_path):
    with pytest.raises(IsADirectoryError, match="path must be a file, got the directory"):
        load_text_file(tmp_path)


def test_13_missing_columns(tmp_path):
    path = _write_csv(tmp_path / "d.csv", [("hi", "a")], header=("sentence", "label"))
    with pytest.raises(ValueError, match=r"text_column='text' is not a column; columns are"):
        load_text_file(path)


def test_14_empty_file(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(ValueError, match="the file holds no rows"):
        load_text_file(tmp_path / "e.csv")


def test_15_test_label_never_trained(tmp_path):
    train = _write_csv(tmp_path / "tr.csv", [("a b", "x"), ("c d", "y")] * 3)
    test = _write_csv(tmp_path / "te.csv", [("e f", "z")])
    with pytest.raises(ValueError, match=r"never seen in train.*'z'"):
        load_text_file(train, test_path=test, num_experiences=2)


def test_16_label_missing_from_label_map():
    with pytest.raises(ValueError, match=r"labels must be < len\(class_names\) = 2"):
        TextDataset(TextSplit(["a", "b"], [0, 5]), TextSplit(["c"], [0]), ["x", "y"], [[0], [1]])


def test_17_empty_dataset():
    with pytest.raises(ValueError, match="train must not be empty"):
        TextDataset(TextSplit([], []), TextSplit(["c"], [0]), ["x"], [[0]])


def test_18_empty_experience():
    with pytest.raises(ValueError, match="empty experience"):
        TextDataset(TextSplit(["a", "b"], [0, 1]), TextSplit(["c"], [0]), ["x", "y"], [[0, 1], []])


def test_19_missing_clinc150_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="CLINC150 not found: looked for .*nowhere"):
        load_clinc150(root=tmp_path / "nowhere")


# ---------------------------------------------------------------- runner, checkpoints, CLI (20-28)
def _cfg(out, **kw):
    return RunConfig(method="ncm", backbone="tiny-bert", out=str(out), progress=False,
                     plots=False, **kw)


def test_20_out_dir_already_holds_results(tmp_path, backbone):
    data = synthetic_text_dataset(num_classes=2, num_experiences=1)
    run(_cfg(tmp_path), backbone=backbone, dataset=data)
    saved = (tmp_path / "results.json").read_bytes()
    with pytest.raises(FileExistsError, match="already holds results.*--overwrite"):
        run(_cfg(tmp_path), backbone=backbone, dataset=data)
    assert (tmp_path / "results.json").read_bytes() == saved


def test_21_texts_longer_than_the_limit_truncated_and_said_once(backbone):
    long = " ".join(["word"] * 200)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = warn_truncated(backbone, [long, "short", long])
    ours = [w for w in caught if "truncated" in str(w.message)]
    assert n == 2 and len(ours) == 1 and "2 of 3 texts" in str(ours[0].message)
    enc = backbone.tokenize([long])
    assert enc["input_ids"].shape[1] == backbone.config.max_length


def test_22_truncated_checkpoint(tmp_path, backbone):
    model = build_model("ncm", backbone, num_classes=2)
    ident = {"method": "ncm"}
    folder = save_checkpoint(tmp_path, model, experience=0, state={}, identity=ident)
    f = folder / "model" / "method.safetensors"
    f.write_bytes(f.read_bytes()[:10])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_checkpoint(tmp_path, backbone, identity=ident)


def test_23_checkpoint_of_another_method_or_class_count(tmp_path, backbone):
    model = build_model("ncm", backbone, num_classes=2)
    save_checkpoint(tmp_path, model, experience=0, state={},
                    identity={"method": "ncm", "num_classes": 2})
    with pytest.raises(ValueError, match="mismatch in method: saved 'ncm', this run has 'l2p'"):
        load_checkpoint(tmp_path, backbone, identity={"method": "l2p", "num_classes": 2})
    with pytest.raises(ValueError, match="mismatch in num_classes: saved 2, this run has 3"):
        load_checkpoint(tmp_path, backbone, identity={"method": "ncm", "num_classes": 3})


def test_24_cli_unknown_method_exit_2(tmp_path, capsys):
    _write_csv(tmp_path / "d.csv", [("a b", "x"), ("c d", "y")] * 4)
    code = main(["run", "--benchmark", f"file:{tmp_path / 'd.csv'}", "--backbone", "tiny-bert",
                 "--method", "nope", "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 2 and "unknown method 'nope'" in capsys.readouterr().err


def test_25_cli_missing_data_file_exit_2(tmp_path, capsys):
    code = main(["run", "--benchmark", f"file:{tmp_path / 'none.csv'}", "--out", str(tmp_path)])
    assert code == 2 and "not found" in capsys.readouterr().err


def test_26_cli_directory_as_data_file_exit_2(tmp_path, capsys):
    code = main(["run", "--benchmark", f"file:{tmp_path}", "--out", str(tmp_path / "o")])
    assert code == 2 and "directory" in capsys.readouterr().err


def test_27_cli_resume_without_checkpoint_exit_2(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_28_cli_bad_numbers_exit_2(tmp_path, capsys):
    assert main(["run", "--epochs", "0", "--out", str(tmp_path)]) == 2
    assert "epochs must be an int >= 1" in capsys.readouterr().err
    assert main(["run", "--set", "top_k", "--out", str(tmp_path)]) == 2
    assert "key=value" in capsys.readouterr().err


def test_29_out_is_a_file(tmp_path, backbone):
    (tmp_path / "f").write_text("user data")
    with pytest.raises(NotADirectoryError, match="out must be a directory"):
        run(_cfg(tmp_path / "f"), backbone=backbone,
            dataset=synthetic_text_dataset(num_classes=2, num_experiences=1))
    assert (tmp_path / "f").read_text() == "user data"


def test_30_compare_folder_without_results(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_31_targets_outside_the_current_experience(backbone):
    model = build_model("prompt_tuning", backbone, num_classes=4)
    model.begin_experience(0, [0, 1])
    inputs = backbone.tokenize(["a b", "c d"])
    with pytest.raises(ValueError, match=r"targets \[3\] are not classes of experience 0"):
        model.training_loss(inputs, torch.tensor([0, 3]))


def test_32_csv_header_repeats_a_column(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("text,label,label\nhello,a,b\n")
    with pytest.raises(ValueError, match=r"dup.csv: the header repeats column\(s\) \['label'\]"):
        load_text_file(p)


def test_33_csv_row_with_an_unquoted_comma(tmp_path):
    p = tmp_path / "ragged.csv"
    p.write_text("text,label\nhello,greet\nbook a table, please,restaurant\n")
    with pytest.raises(ValueError, match="ragged.csv: line 3 has 3 fields, the header has 2 .*comma"):
        load_text_file(p)


def test_34_file_not_in_utf8(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("text,label\ncaf\xe9,drink\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin.csv: not UTF-8 text"):
        load_text_file(p)


@pytest.mark.parametrize("labels, match", [
    ([1, "1"], r"labels mix strings \(row 1\) and integers \(row 0\)"),
    ([1, 1.0], r"row 1 has label 1.0; JSON labels must be strings or integers"),
    (["a", True], r"row 1 has label True"),
])
def test_35_json_labels_of_mixed_types(tmp_path, labels, match):
    p = tmp_path / "j.json"
    p.write_text(json.dumps([{"text": f"t{i}", "label": lab} for i, lab in enumerate(labels)]))
    with pytest.raises(ValueError, match=match):
        load_text_file(p)


def test_36_bad_jsonl_line(tmp_path):
    p = tmp_path / "b.jsonl"
    p.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": \n')
    with pytest.raises(ValueError, match="b.jsonl: line 3 is not valid JSON"):
        load_text_file(p)


def test_37_cli_resume_with_overwrite_exit_2(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path), "--overwrite"]) == 2
    assert "--resume and --overwrite exclude each other" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--seed", "-1"), ("--seed", "99999999999"), ("--class-order-seed", "-1")])
def test_38_cli_seed_out_of_range_exit_2(tmp_path, capsys, flag, value):
    assert main(["run", "--backbone", "tiny-bert", "--out", str(tmp_path / "r"), flag, value]) == 2
    err = capsys.readouterr().err
    assert f"{flag[2:].replace('-', '_')} must be in [0, 2**32), got {value}" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flags, message", [
    (["--method", "nope"], "unknown method 'nope'"),
    (["--set", "topk=3"], "unknown config option(s) ['topk']"),
    (["--set", "lr=-1"], "lr must be > 0"),
])
def test_39_cli_bad_method_or_option_before_loading_anything(tmp_path, capsys, monkeypatch, flags, message):
    import cl_prompts.run.runner as runner

    def never(*args, **kwargs):
        raise AssertionError("the data were loaded before the method options were checked")

    monkeypatch.setattr(runner, "load_benchmark", never)
    assert main(["run", "--out", str(tmp_path / "r"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
