"""``cl-prompts`` end to end on a CSV stream and the tiny random backbone."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cl_prompts.backbones.precision import cpu_has_native_bf16
from cl_prompts.cli import main, parse_set
from cl_prompts.data import synthetic_text_dataset, write_text_csv
from cl_prompts.results import read_results
from cl_prompts.run import RunConfig, run
from cl_prompts.run.checkpoints import has_checkpoint


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    ds = synthetic_text_dataset(num_classes=6, num_experiences=3, train_per_class=8,
                                test_per_class=3)
    return write_text_csv(tmp_path_factory.mktemp("data") / "toy.csv", [ds.train, ds.test], ds.class_names)


def _args(csv_path, out, *extra):
    return ["run", "--benchmark", f"file:{csv_path}", "--backbone", "tiny-bert",
            "--method", "prompt_tuning", "--experiences", "3", "--epochs", "1",
            "--batch-size", "8", "--out", str(out), "--no-progress", "--no-plots", *extra]


def test_parse_set_reads_json_values_and_bare_strings():
    assert parse_set(["top_k=5", "layers=[0,1]", "index=HNSW32", "lr=0.01"]) == {
        "top_k": 5, "layers": [0, 1], "index": "HNSW32", "lr": 0.01}
    with pytest.raises(ValueError, match="key=value"):
        parse_set(["top_k"])


def test_run_writes_results_and_compare_tables_them(csv_path, tmp_path, capsys):
    for seed in (0, 1):
        assert main(_args(csv_path, tmp_path / f"s{seed}", "--seed", str(seed), "--lr", "0.01")) == 0
        # --no-progress prints no summary, but still where the results are
        assert capsys.readouterr().out == f"results: {tmp_path / f's{seed}' / 'results.json'}\n"
    r = read_results(tmp_path / "s0")
    assert r["benchmark"] == "toy" and r["method"] == "prompt_tuning"
    assert r["num_experiences"] == 3 and r["config"]["method_options"] == {"lr": 0.01}
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "s0"), str(tmp_path / "s1"),
                 "--output", str(tmp_path / "t.md")]) == 0
    table = capsys.readouterr().out
    assert table.count("| prompt_tuning") == 1 and "| 0,1 |" in table
    assert (tmp_path / "t.md").read_text() == table


def test_existing_results_refused_with_exit_2(csv_path, tmp_path, capsys):
    assert main(_args(csv_path, tmp_path)) == 0
    before = (tmp_path / "results.json").read_bytes()
    assert main(_args(csv_path, tmp_path)) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "results.json").read_bytes() == before
    assert main(_args(csv_path, tmp_path, "--overwrite")) == 0


def test_resume_from_the_command_line(csv_path, tmp_path):
    assert main(_args(csv_path, tmp_path / "full")) == 0
    full = read_results(tmp_path / "full")

    class Crash(RuntimeError):
        pass

    def crash(e, state):
        if e == 1:
            raise Crash

    cfg = RunConfig(benchmark=f"file:{csv_path}", backbone="tiny-bert", method="prompt_tuning",
                    experiences=3, epochs=1, batch_size=8, out=str(tmp_path / "cut"),
                    progress=False, plots=False)
    with pytest.raises(Crash):
        run(cfg, on_experience_end=crash)
    # only the folder is given: the options come from the checkpoint
    assert main(["run", "--resume", str(tmp_path / "cut"), "--no-progress", "--no-plots"]) == 0
    assert read_results(tmp_path / "cut")["accuracy_matrix"] == full["accuracy_matrix"]


def test_methods_lists_the_registry_one_line_each(capsys):
    from cl_prompts.methods import list_methods

    assert main(["methods"]) == 0
    table, hint = capsys.readouterr().out.strip().split("\n\n")
    lines = table.splitlines()
    assert [line.split()[0] for line in lines] == list_methods()
    ranpac = next(line for line in lines if line.startswith("ranpac "))
    assert "ridge classifier on random ReLU features" in ranpac
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)  # every method has a description
    assert "--causal-lm" in hint
    assert main(["methods", "--causal-lm"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list_methods(causal=True)
    assert any(line.startswith("progressive_prompts ") and "ICLR 2023" in line for line in lines)


def test_unknown_subcommand_exits_with_usage():
    with pytest.raises(SystemExit) as exc:
        main(["train"])
    assert exc.value.code == 2


def test_run_help_lists_every_benchmark_form(capsys):
    from cl_prompts.choices import BENCHMARK_FORMS, IMAGE_BENCHMARKS, TEXT_BENCHMARKS

    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the lines
    forms = ["file:PATH", "folder:PATH", *TEXT_BENCHMARKS, *IMAGE_BENCHMARKS]
    assert set(forms) == set(BENCHMARK_FORMS)
    for form in forms:
        assert f"{form}: " in text, form
    assert "hwu64" in text


def test_a_hub_id_offline_is_one_error_line_that_points_to_a_local_folder(csv_path, tmp_path, monkeypatch,
                                                                          capsys):
    import socket

    from cl_prompts.backbones import loading

    def refuse(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "no network in this test")

    monkeypatch.setattr(loading, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    argv = _args(csv_path, tmp_path / "run")
    argv[argv.index("tiny-bert")] = "cl-prompts-tests/no-such-model"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("cl-prompts: error: backbone 'cl-prompts-tests/no-such-model' is not available offline")
    assert "local model folder" in err and "'minilm'" in err


def test_headline_script_on_a_tiny_subset(csv_path, tmp_path, benchmark_script):
    headline = benchmark_script("headline")
    argv = ["--benchmark", f"file:{csv_path}", "--backbone", "tiny-bert", "--methods", "ncm",
            "linear_probe", "--seeds", "0", "1", "--quick", "--out", str(tmp_path),
            "--no-progress", "--no-plots"]
    md = headline.main(argv)
    text = md.read_text()
    assert "| ncm |" in text and "| linear_probe |" in text and "| 0,1 |" in text
    assert "Forgetting: for each old experience" in text
    doc = json.loads((tmp_path / "headline.json").read_text())
    assert len(doc["runs"]) == 4 and doc["table_markdown"] in text
    # a second call reuses the finished runs (same numbers, nothing retrained)
    before = (tmp_path / "runs" / "ncm-seed0-quick" / "results.json").read_bytes()
    headline.main(argv)
    assert (tmp_path / "runs" / "ncm-seed0-quick" / "results.json").read_bytes() == before
    # a run made with another method config is not reused silently: the difference is named
    path = tmp_path / "runs" / "ncm-seed0-quick" / "results.json"
    stale = json.loads(before)
    stale["method_config"]["metric"] = "euclidean" if stale["method_config"]["metric"] == "cosine" else "cosine"
    stale["versions"]["cl_prompts"] = "0.0.1"
    path.write_text(json.dumps(stale))
    ncm_only = [*argv[:5], "ncm", *argv[7:]]
    with pytest.raises(SystemExit, match=r"metric=.*today.*cl_prompts 0\.0\.1, today"):
        headline.main(ncm_only)
    assert json.loads(path.read_text()) == stale  # nothing replaced
    headline.main([*ncm_only, "--reuse-stale"])
    assert json.loads(path.read_text()) == stale
    headline.main([*ncm_only, "--rerun-stale"])
    assert read_results(path.parent)["method_config"] == json.loads(before)["method_config"]


def test_headline_evaluates_on_a_subsample_and_says_so_under_the_table(csv_path, tmp_path, benchmark_script):
    headline = benchmark_script("headline")
    md = headline.main(["--benchmark", f"file:{csv_path}", "--backbone", "tiny-bert", "--methods", "ncm",
                        "--seeds", "0", "--quick", "--eval-subsample", "1", "--out", str(tmp_path),
                        "--no-progress", "--no-plots"])
    saved = read_results(tmp_path / "runs" / "ncm-seed0-quick")
    assert saved["config"]["eval_subsample"] == 1 and saved["eval_subsample"]["per_class"] == 1
    assert "Evaluated on N test samples per class before the last experience" in md.read_text()
    assert "ncm (N=1)" in md.read_text()


def test_headline_runs_a_preset_into_its_own_folders_and_refuses_methods_without_it(
        csv_path, tmp_path, benchmark_script):
    headline = benchmark_script("headline")
    argv = ["--benchmark", f"file:{csv_path}", "--backbone", "tiny-bert", "--seeds", "0", "--quick",
            "--out", str(tmp_path), "--no-progress", "--no-plots", "--preset", "paper"]
    with pytest.raises(SystemExit, match=r"\['ncm'\] have no preset 'paper'"):
        headline.main([*argv, "--methods", "l2p", "ncm"])
    headline.main([*argv, "--methods", "l2p"])
    saved = read_results(tmp_path / "runs" / "l2p-paper-seed0-quick")
    assert saved["config"]["method_options"] == {"preset": "paper"}
    assert not (tmp_path / "runs" / "l2p-seed0-quick").exists()


def test_headline_passes_method_options_and_a_query_encoder_to_every_run(csv_path, tmp_path, benchmark_script):
    headline = benchmark_script("headline")
    headline.main(["--benchmark", f"file:{csv_path}", "--backbone", "tiny-llama", "--query-encoder", "tiny-bert",
                   "--methods", "growing_pool", "--set", "prompt_length=2", "--set", "projection_dim=32",
                   "--seeds", "0", "--quick", "--out", str(tmp_path), "--no-progress", "--no-plots"])
    saved = read_results(tmp_path / "runs" / "growing_pool-seed0-quick")
    assert saved["config"]["query_encoder"] == "tiny-bert"
    assert saved["method_config"]["prompt_length"] == 2 and saved["method_config"]["projection_dim"] == 32
    # the same folder without the query encoder: the run is not reused silently
    with pytest.raises(SystemExit, match="query_encoder='tiny-bert', today None"):
        headline.main(["--benchmark", f"file:{csv_path}", "--backbone", "tiny-llama", "--methods", "growing_pool",
                       "--set", "prompt_length=2", "--set", "projection_dim=32", "--seeds", "0", "--quick",
                       "--out", str(tmp_path), "--no-progress", "--no-plots"])


def test_headline_splits_the_classes_into_the_experiences_asked_and_refuses_a_run_split_otherwise(
        csv_path, tmp_path, benchmark_script):
    headline = benchmark_script("headline")
    argv = ["--benchmark", f"file:{csv_path}", "--backbone", "tiny-bert", "--methods", "ncm", "--seeds", "0",
            "--quick", "--out", str(tmp_path), "--no-progress", "--no-plots"]
    headline.main([*argv, "--experiences", "2"])
    saved = read_results(tmp_path / "runs" / "ncm-seed0-quick")
    assert saved["config"]["experiences"] == 2 and len(saved["accuracy_matrix"]) == 2
    with pytest.raises(SystemExit, match="experiences=2, today None"):
        headline.main(argv)


def test_headline_lists_the_tuning_that_chose_the_current_defaults(tmp_path, benchmark_script):
    headline = benchmark_script("headline")
    files = []
    for name, options, val in (("now", {"ridge": 100.0, "candidates": 2}, 97.1),
                               ("then", {"ridge": 300.0, "candidates": 3}, 96.9)):  # the later file wins by order
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"chosen": {"growing_pool": {
            "options": options, "mean_val_accuracy": val, "val_accuracy": {"clinc150": val}}}}))
        files.append(str(path))
    table = headline.validation_table(files, ["growing_pool", "l2p"], "clinc150")
    assert '"candidates": 2' in table and "| 97.10 | 97.10 |" in table  # the defaults' own tuning
    doc = json.loads(Path(files[0]).read_text())
    doc["chosen"]["growing_pool"]["seeds"] = [0, 1, 2]
    Path(files[0]).write_text(json.dumps(doc))
    assert "| 97.10 (seeds 0 1 2) | 97.10 |" in headline.validation_table(files, ["growing_pool"], "clinc150")
    assert "| l2p | not tuned" in table
    files[0] = files[1]  # no tuning chose the defaults: said so, no figure of other settings
    table = headline.validation_table(files, ["growing_pool"], "clinc150")
    assert "| growing_pool | no tuning chose its current defaults | - | - |" in table and "96.90" not in table


def test_killed_process_resumes_to_the_same_matrix(csv_path, tmp_path):
    """SIGKILL a real ``cl-prompts run`` after its first checkpoint, resume it from the CLI.

    Only the killed run is a process of its own; the uninterrupted reference run and the
    resume go through ``main`` here (the same single-threaded settings, the same numbers)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    # many epochs (the last --epochs wins) so that each experience takes a while
    assert main(_args(csv_path, tmp_path / "full", "--epochs", "25")) == 0
    full = read_results(tmp_path / "full")

    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "cl_prompts.cli", *_args(csv_path, cut, "--epochs", "25")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not has_checkpoint(cut) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    assert has_checkpoint(cut) and not (cut / "results.json").exists()

    with pytest.warns(UserWarning, match="stale lock"):  # the killed run could not release it
        assert main(["run", "--resume", str(cut), "--no-progress", "--no-plots"]) == 0
    resumed = read_results(cut)
    assert resumed["resumed_at"] and resumed["resumed_at"][0] >= 1
    assert resumed["accuracy_matrix"] == full["accuracy_matrix"]


def test_own_columns_test_file_and_validation_split(tmp_path, capsys):
    ds = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=10, test_per_class=3)
    for split, name in ((ds.train, "train.csv"), (ds.test, "test.csv")):
        write_text_csv(tmp_path / name, [split], ds.class_names, text_column="utterance", label_column="intent")
    base = ["run", "--benchmark", f"file:{tmp_path / 'train.csv'}", "--backbone", "tiny-bert",
            "--method", "ncm", "--experiences", "2", "--no-progress", "--no-plots",
            "--text-column", "utterance", "--label-column", "intent"]
    assert main([*base, "--test-file", str(tmp_path / "test.csv"), "--out", str(tmp_path / "t")]) == 0
    r = read_results(tmp_path / "t")
    assert r["eval_split"] == "test" and r["benchmark"] == tmp_path.name
    assert main([*base, "--eval-split", "val", "--val-fraction", "0.2", "--out", str(tmp_path / "v")]) == 0
    r = read_results(tmp_path / "v")
    assert r["eval_split"] == "val" and r["config"]["val_fraction"] == 0.2
    capsys.readouterr()
    assert main([*base[:-4], "--out", str(tmp_path / "bad")]) == 2  # the default columns do not exist
    err = capsys.readouterr().err
    assert "text_column='text' is not a column" in err and "choose the column with --text-column" in err
    assert main([*base, "--test-file", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "x")]) == 2
    assert "--test-file data file not found" in capsys.readouterr().err


def test_config_file_gives_options_and_flags_override_it(tmp_path):
    from cl_prompts.cli import _parser, config_from_args

    f = tmp_path / "run.toml"
    f.write_text('method = "ranpac"\nseed = 3\nepochs = 2\n[method_options]\nridge = 10.0\nlayers = 2\n')
    cfg = config_from_args(_parser().parse_args(["run", "--config", str(f), "--seed", "5", "--set", "layers=1"]))
    assert (cfg.method, cfg.seed, cfg.epochs) == ("ranpac", 5, 2)
    assert cfg.method_options == {"ridge": 10.0, "layers": 1}


def test_no_calibrate_flag_turns_the_calibration_off():
    from cl_prompts.cli import _parser, config_from_args

    assert config_from_args(_parser().parse_args(["run"])).calibrate is True
    assert config_from_args(_parser().parse_args(["run", "--no-calibrate"])).calibrate is False


def test_checkpoint_every_takes_seconds_or_auto(capsys):
    from cl_prompts.cli import _parser, config_from_args

    def every(*flags):
        return config_from_args(_parser().parse_args(["run", *flags])).checkpoint_every

    assert every() == "auto" and every("--checkpoint-every", "auto") == "auto"
    assert every("--checkpoint-every", "0") == 0 and every("--checkpoint-every", "300") == 300
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "--checkpoint-every", "often"])
    assert "expected a number of seconds or 'auto', got 'often'" in capsys.readouterr().err


@pytest.mark.parametrize("text, suffix, match", [
    ('methd = "ranpac"\n', ".toml", r"unknown option\(s\) \['methd'\]"),
    ("method = ", ".toml", "cannot be read"),
    ("[1, 2]", ".json", "must hold a table of options"),
    ("method: ranpac", ".yaml", "must be a .toml or .json file"),
])
def test_bad_config_files_are_refused(tmp_path, capsys, text, suffix, match):
    f = tmp_path / f"c{suffix}"
    f.write_text(text)
    assert main(["run", "--config", str(f), "--out", str(tmp_path / "o")]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_a_runs_results_json_repeats_it(csv_path, tmp_path):
    assert main(_args(csv_path, tmp_path / "a", "--seed", "4", "--set", "prompt_length=2")) == 0
    first = read_results(tmp_path / "a")
    assert first["method_config"]["prompt_length"] == 2 and "lr" in first["method_config"]  # every field
    assert main(["run", "--config", str(tmp_path / "a" / "results.json"), "--out", str(tmp_path / "b"),
                 "--no-progress", "--no-plots"]) == 0
    again = read_results(tmp_path / "b")
    assert again["accuracy_matrix"] == first["accuracy_matrix"]
    assert again["config"]["seed"] == 4 and again["method_config"] == first["method_config"]


def test_seeds_sweep_runs_one_folder_per_seed_and_prints_the_table(csv_path, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(_args(csv_path, out, "--seeds", "0", "1")) == 0
    printed = capsys.readouterr().out
    assert [read_results(out / f"seed{s}")["seed"] for s in (0, 1)] == [0, 1]
    assert "| prompt_tuning |" in printed and "±" in printed and "0,1" in printed
    assert main(_args(csv_path, tmp_path / "x", "--seeds", "0", "--seed", "1")) == 2
    assert "--seeds excludes --seed" in capsys.readouterr().err
    assert main(_args(csv_path, tmp_path / "y", "--seeds", "2", "2")) == 2
    assert "repeats a seed" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_class_order_file_sorted_and_seed(tmp_path):
    path = tmp_path / "d.csv"
    rows = [("t zebra", "zebra"), ("t apple", "apple"), ("t mango", "mango"), ("t zebra 2", "zebra"),
            ("t apple 2", "apple"), ("t mango 2", "mango")] * 3
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    base = ["run", "--benchmark", f"file:{path}", "--backbone", "tiny-bert", "--method", "ncm",
            "--experiences", "3", "--no-progress", "--no-plots"]
    names = {}
    for order in ("file", "sorted", "seed:5"):
        out = tmp_path / order.replace(":", "")
        assert main([*base, "--class-order", order, "--out", str(out)]) == 0
        r = read_results(out)
        names[order] = r["experience_names"]
    assert names["file"] == ["zebra", "apple", "mango"]
    assert names["sorted"] == ["apple", "mango", "zebra"]
    seeded = RunConfig(benchmark=f"file:{path}", class_order="seed:5")
    assert seeded.class_order_seed == 5 and seeded.class_order is None
    assert RunConfig(class_order="sorted").run_dir("clinc150").name.endswith("-sortedorder")
    with pytest.raises(ValueError, match="class_order must be 'file', 'sorted' or 'seed:N'"):
        RunConfig(class_order="random")
    with pytest.raises(ValueError, match="disagree"):
        RunConfig(class_order="seed:1", class_order_seed=2)


def test_tensorboard_log_holds_the_loss_of_every_step_and_the_accuracies(csv_path, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    assert main(_args(csv_path, out, "--log", "tensorboard")) == 0
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    loss = events.Scalars("train/loss")
    r = read_results(out)
    # 3 experiences x 3 batches (each experience: 2 classes x 9 training rows, batches of 8)
    assert [e.step for e in loss] == list(range(1, 10))
    avg = events.Scalars("accuracy/average_seen")
    assert [e.value for e in avg] == pytest.approx([sum(row[: i + 1]) / (i + 1)
                                                   for i, row in enumerate(r["accuracy_matrix"])])
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        main(_args(csv_path, tmp_path / "bad", "--log", "mlflow"))
    with pytest.raises(ValueError, match="unknown logger 'mlflow'"):
        RunConfig(log=["mlflow"])


def test_wandb_log_writes_an_offline_run_into_the_run_folder(csv_path, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "wb"
    assert main(_args(csv_path, out, "--log", "wandb")) == 0
    runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1 and runs[0].stat().st_size > 0
    data = runs[0].read_bytes()  # protobuf records: the keys and the config appear as raw strings
    assert b"train/loss" in data and b"accuracy/average_seen" in data and b"prompt_tuning" in data


def test_methods_options_lists_every_field_with_its_default_and_help(capsys):
    import dataclasses

    from cl_prompts.methods.growing_pool import GrowingPoolConfig

    assert main(["methods", "--options", "growing_pool"]) == 0
    out = capsys.readouterr().out
    for f in dataclasses.fields(GrowingPoolConfig):
        assert re.search(rf"^  {f.name} = {re.escape(repr(f.default))}$", out, flags=re.M), f.name
    assert re.search(r"^  prompted_ridge = 100.0\n      ridge of the prompted classifier$", out, flags=re.M)
    assert "docs/tuning.md#growing_pool" in out  # the config's docstring follows
    assert main(["methods", "--options", "nope"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err


def test_precision_flag_runs_the_encoder_in_bf16_and_is_part_of_the_run(csv_path, tmp_path):
    assert main(_args(csv_path, tmp_path / "bf16", "--precision", "bf16")) == 0
    low = read_results(tmp_path / "bf16")
    assert low["config"]["precision"] == "bf16" and low["precision"] == "bf16"
    assert all(0.0 <= a <= 100.0 for row in low["accuracy_matrix"] for a in row if a is not None)
    # resuming under another precision would mix two models: refused
    with pytest.raises(ValueError, match=r"mismatch in run\.precision"):
        run(RunConfig(benchmark=f"file:{csv_path}", backbone="tiny-bert", method="prompt_tuning",
                      experiences=3, epochs=1, batch_size=8, out=str(tmp_path / "bf16"), resume=True,
                      progress=False, plots=False, precision="fp32"))
    assert main(_args(csv_path, tmp_path / "auto", "--precision", "auto")) == 0
    auto = read_results(tmp_path / "auto")  # the precision "auto" resolved to on this CPU is recorded
    assert auto["config"]["precision"] == "auto" and auto["precision"] == ("bf16" if cpu_has_native_bf16() else "fp32")
    with pytest.raises(SystemExit):
        main(_args(csv_path, tmp_path / "fp8", "--precision", "fp8"))


def test_headline_reads_only_the_tunings_made_on_its_backbone(tmp_path, benchmark_script):
    headline = benchmark_script("headline")
    llm = tmp_path / "llm.json"  # a causal LM's l2p shares the name, not the config, of the encoder's
    llm.write_text(json.dumps({"setting": {"backbone": "smollm2"}, "chosen": {"l2p": {
        "options": {"lr": 0.03}, "mean_val_accuracy": 12.5, "val_accuracy": {"hwu64": 12.5}}}}))
    assert "| l2p | not tuned" in headline.validation_table([str(llm)], ["l2p"], "hwu64", "minilm")
    table = headline.validation_table([str(llm)], ["l2p"], "hwu64", "smollm2", causal=True)
    assert '| l2p | `{"lr": 0.03}` | 12.50 | 12.50 |' in table


def test_the_query_options_parse_and_bad_ones_are_refused(capsys):
    from cl_prompts.cli import _parser, config_from_args

    args = _parser().parse_args(["run", "--backbone", "smollm2", "--pooling", "mean", "--query-layer", "-2"])
    cfg = config_from_args(args)
    assert cfg.pooling == "mean" and cfg.query_layer == -2
    assert config_from_args(_parser().parse_args(["run", "--query-layer", "last"])).query_layer == "last"
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "--query-layer", "first"])
    assert "expected middle, last or an int index, got 'first'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "--pooling", "max"])


def test_headline_counts_a_causal_lm_run_made_before_the_query_options_as_mean_over_the_last_layer(benchmark_script):
    headline = benchmark_script("headline")
    from cl_prompts.run import RunConfig

    old_llm, old_encoder = {"config": {"backbone": "smollm2"}}, {"config": {"backbone": "minilm"}}
    assert headline.run_differences(old_llm, RunConfig(backbone="smollm2")) == [
        "pooling='mean', today 'auto'", "query_layer='last', today 'auto'"]
    assert headline.run_differences(old_llm, RunConfig(backbone="smollm2", pooling="mean", query_layer="last")) == []
    assert headline.run_differences(old_encoder, RunConfig(backbone="minilm")) == []


def test_repeating_a_causal_lm_run_saved_before_the_query_options_repeats_its_query(tmp_path):
    from cl_prompts.run.config import read_config_file

    def saved(backbone, **config):
        path = tmp_path / f"{backbone}-{len(config)}.json"
        path.write_text(json.dumps({"accuracy_matrix": [[1.0]], "config": {"backbone": backbone, **config}}))
        return read_config_file(path)

    old = saved("smollm2")
    assert old["pooling"] == "mean" and old["query_layer"] == "last"
    assert RunConfig(**old).identity()["backbone"] == "smollm2"
    assert saved("smollm2", pooling="auto", query_layer=12)["query_layer"] == 12  # recorded: kept as is
    assert "pooling" not in saved("tiny-bert")  # an encoder's default is what it always was
