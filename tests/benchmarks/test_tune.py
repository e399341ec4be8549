"""benchmarks/tune.py: settings are chosen on validation data, never on the test split."""

from __future__ import annotations

import csv
import json

import pytest

from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.data import synthetic_text_dataset

# two trials instead of slda's 15: each trial is a run, and two are enough to choose between
SMALL_SLDA_GRID = {"slda": {"layers": [1, 2], "shrinkage": [1e-4]}}


@pytest.fixture(scope="module")
def tune(benchmark_script):
    return benchmark_script("tune")


def _write(path, split, names):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows((t, names[y]) for t, y in zip(split.texts, split.labels, strict=True))
    return path


def test_trials_are_the_grid_product_and_the_best_mean_wins(tune):
    grid = {"m": {"a": [1, 2], "b": ["x", "y"]}}
    assert tune.trials("m", grid) == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    records = [{"options": {"a": 1}, "benchmark": "p", "val_accuracy": 90.0},
               {"options": {"a": 1}, "benchmark": "q", "val_accuracy": 80.0},
               {"options": {"a": 2}, "benchmark": "p", "val_accuracy": 99.0},
               {"options": {"a": 2}, "benchmark": "q", "val_accuracy": 72.0},
               {"options": {"a": 3}, "benchmark": "p", "val_accuracy": 100.0}]  # incomplete: ignored
    chosen = tune.choose(records, ["p", "q"])
    assert chosen["options"] == {"a": 2} and chosen["mean_val_accuracy"] == 85.5
    with pytest.raises(ValueError, match="unknown|no grid"):
        tune.trials("nope")


def test_with_several_seeds_the_best_mean_over_seeds_wins(tune):
    def rec(a, bench, seed, acc):
        return {"options": {"a": a}, "benchmark": bench, "seed": seed, "val_accuracy": acc}

    # a=1 wins seed 0 by a hair; a=2 wins the mean over seeds 0 and 1
    records = [rec(1, "p", 0, 91.0), rec(1, "q", 0, 80.0), rec(1, "p", 1, 88.0), rec(1, "q", 1, 79.0),
               rec(2, "p", 0, 90.5), rec(2, "q", 0, 80.0), rec(2, "p", 1, 90.0), rec(2, "q", 1, 80.0),
               rec(3, "p", 0, 99.0), rec(3, "q", 0, 99.0)]  # seed 1 missing: not a candidate
    assert tune.choose(records, ["p", "q"], [0])["options"] == {"a": 3}
    chosen = tune.choose(records, ["p", "q"], [0, 1])
    assert chosen["options"] == {"a": 2} and chosen["seeds"] == [0, 1]
    assert chosen["mean_val_accuracy"] == pytest.approx((90.5 + 80 + 90 + 80) / 4)
    assert chosen["val_accuracy"] == {"p": pytest.approx(90.25), "q": pytest.approx(80.0)}
    with pytest.raises(ValueError, match="every benchmark and seed"):
        tune.choose(records, ["p", "q"], [2])


def test_trials_recorded_before_an_option_was_added_count_with_its_old_value(tune):
    old = {"method": "ranpac", "options": {"ridge": 100.0}, "benchmark": "p", "val_accuracy": 95.0}
    new = {**old, "options": {"layers": 4, "ridge": 100.0}, "val_accuracy": 94.0}
    assert tune.full_options(old["options"], "ranpac") == {"layers": 1, "ridge": 100.0, "projection_dim": 5000}
    assert tune.full_options({"a": 1}, "not-a-grid") == {"a": 1}
    assert tune.choose([old, new], ["p"])["options"] == {"layers": 1, "ridge": 100.0, "projection_dim": 5000}
    assert tune.choose([old, {**new, "val_accuracy": 96.0}], ["p"])["options"] == {
        "layers": 4, "ridge": 100.0, "projection_dim": 5000}


def test_a_list_of_grids_is_their_union_without_repeats(tune):
    grid = {"m": [{"a": [1, 2], "b": ["x"]}, {"a": [2, 3], "b": ["x"]}]}
    assert tune.trials("m", grid) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}, {"a": 3, "b": "x"}]
    assert tune.grid_options("m", grid) == {"a", "b"} and tune.grid_options("nope", grid) == set()
    # a trial recorded without an added option equals the trial that spells out its recorded value
    assert tune.full_options({"layers": 4, "ridge": 100.0}, "ranpac") in tune.trials("ranpac")


def test_removing_the_test_file_does_not_change_the_choice(tune, tmp_path):
    ds = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=10, test_per_class=4)
    train = _write(tmp_path / "train.csv", ds.train, ds.class_names)
    test = _write(tmp_path / "test.csv", ds.test, ds.class_names)
    backbone = tiny_text_backbone(max_length=16)
    docs = []
    for name, test_file in (("with", test), ("without", tmp_path / "deleted.csv")):
        suites = {"toy": {"benchmark": f"file:{train}", "test_file": str(test_file), "experiences": 2}}
        if name == "without":
            test.unlink()  # the test split no longer exists
        out = tmp_path / name
        docs.append(tune.main(["--methods", "ncm", "slda", "--backbone", "tiny-bert", "--out", str(out),
                               "--grid", json.dumps(SMALL_SLDA_GRID)], backbone=backbone, suites=suites))
        assert json.loads((out / "tune.json").read_text())["chosen"] == docs[-1]["chosen"]
    def without_command(doc):  # the commands differ by their --out
        return {m: {k: v for k, v in c.items() if k != "command"} for m, c in doc["chosen"].items()}

    assert without_command(docs[0]) == without_command(docs[1])
    assert docs[1]["chosen"]["ncm"]["command"].startswith("python benchmarks/tune.py --methods ncm slda")
    assert [t["val_accuracy"] for t in docs[0]["trials"]] == [t["val_accuracy"] for t in docs[1]["trials"]]
    # ncm's own grid, slda's replaced by --grid
    assert len(docs[0]["trials"]) == len(tune.trials("ncm")) + len(tune.trials("slda", SMALL_SLDA_GRID))


def test_several_seeds_train_one_run_per_seed_and_reuse_recorded_ones(tune, tmp_path):
    ds = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=10, test_per_class=4)
    suites = {"toy": {"benchmark": f"file:{_write(tmp_path / 'train.csv', ds.train, ds.class_names)}",
                      "experiences": 2}}
    backbone = tiny_text_backbone(max_length=16)
    out = tmp_path / "out"
    args = ["--methods", "slda", "--backbone", "tiny-bert", "--out", str(out), "--grid", json.dumps(SMALL_SLDA_GRID)]
    one = tune.main(args, backbone=backbone, suites=suites)
    two = tune.main([*args, "--seeds", "0", "1"], backbone=backbone, suites=suites)
    n = len(tune.trials("slda", SMALL_SLDA_GRID))
    assert [t["seed"] for t in two["trials"]] == [0] * n + [1] * n
    assert two["trials"][:n] == one["trials"]  # seed 0's trials were reused, not rerun
    assert sorted(p.name for p in (out / "runs").iterdir() if p.name.endswith("seed1")) == sorted(
        p.name + "-seed1" for p in (out / "runs").iterdir() if not p.name.endswith("seed1"))
    assert two["chosen"]["slda"]["seeds"] == [0, 1]
    assert two["chosen"]["slda"] == {**tune.choose(two["trials"], ["toy"], [0, 1]), "benchmarks": ["toy"],
                                     "command": "python benchmarks/tune.py " + " ".join([*args, "--seeds", "0", "1"])}


def test_grid_option_replaces_a_methods_grid(tune, tmp_path):
    ds = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=10, test_per_class=4)
    suites = {"toy": {"benchmark": f"file:{_write(tmp_path / 'train.csv', ds.train, ds.class_names)}",
                      "experiences": 2}}
    args = ["--methods", "slda", "--backbone", "tiny-bert", "--out", str(tmp_path / "out"),
            "--grid", '{"slda": {"layers": [1], "shrinkage": [0.001, 0.1]}}']
    doc = tune.main(args, backbone=tiny_text_backbone(max_length=16), suites=suites)
    assert [t["options"] for t in doc["trials"]] == [{"layers": 1, "shrinkage": 0.001}, {"layers": 1, "shrinkage": 0.1}]
    assert doc["chosen"]["slda"]["options"] in [t["options"] for t in doc["trials"]]
    with pytest.raises(ValueError, match="--grid"):
        tune.main([*args[:-1], '["not", "a", "grid"]'], backbone=tiny_text_backbone(max_length=16), suites=suites)


def test_a_causal_lm_gets_its_own_grids_and_keeps_its_protocol(tune, tmp_path):
    from cl_prompts.backbones.testing import tiny_causal_lm

    ds = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=6, test_per_class=4)
    suites = {"toy": {"benchmark": f"file:{_write(tmp_path / 'train.csv', ds.train, ds.class_names)}",
                      "experiences": 2}}
    out = tmp_path / "out"
    args = ["--methods", "prompt_tuning", "--backbone", "tiny-llama", "--train-per-class", "4",
            "--batch-size", "4", "--out", str(out), "--grid", '{"prompt_tuning": {"lr": [0.03, 0.3]}}']
    doc = tune.main(args, backbone=tiny_causal_lm(), suites=suites)
    assert [t["options"] for t in doc["trials"]] == [{"lr": 0.03}, {"lr": 0.3}]
    for trial, run_dir in zip(doc["trials"], sorted((out / "runs").iterdir()), strict=True):
        results = json.loads((run_dir / "results.json").read_text())
        assert results["eval_split"] == "val" and results["config"]["train_per_class"] == 4
        assert results["config"]["method_options"] == trial["options"]  # no encoder-grid options added
        assert trial["val_accuracy"] == results["final_average_accuracy"]
    assert doc["setting"]["train_per_class"] == 4 and doc["chosen"]["prompt_tuning"]["options"] in (
        {"lr": 0.03}, {"lr": 0.3})
    assert set(tune.CAUSAL_GRIDS) == {"prompt_tuning", "progressive_prompts", "l2p", "finetune"}
    # trials of another protocol are never mixed into this folder
    with pytest.raises(ValueError, match="train_per_class"):
        tune.main([a if a != "4" else "8" for a in args], backbone=tiny_causal_lm(), suites=suites)
