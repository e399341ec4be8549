"""Run folders, model folders, checkpoints, configs and data files made by someone else
(docs/security.md): each test builds the crafted artifact and checks that it is refused in
one line naming the file and the problem, and that nothing outside the folder changes."""

import json
import os
import shutil
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

import cl_prompts.run.checkpoints as ckpt
from cl_prompts.backbones import BackboneConfig, load_backbone
from cl_prompts.backbones.cache import QueryCache, describe
from cl_prompts.backbones.loading import checkpoint_pooling
from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.cli import _parser, config_from_args, main
from cl_prompts.data import synthetic_text_dataset, write_text_csv
from cl_prompts.extras import is_available
from cl_prompts.methods import build_model, load_model
from cl_prompts.pool import PoolConfig, PromptPool
from cl_prompts.pool.io import save_pool
from cl_prompts.run.out_dir import LOCK_FILE, remove_stale_files, run_lock
from cl_prompts.safe_io import UnsafeFileError, read_json, remove_inside


# ---------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    ds = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=6, test_per_class=2)
    return write_text_csv(tmp_path_factory.mktemp("data") / "toy.csv", [ds.train, ds.test], ds.class_names)


def _run_args(csv_path, out, *extra):
    return ["run", "--benchmark", f"file:{csv_path}", "--backbone", "tiny-bert", "--method", "ncm",
            "--experiences", "2", "--out", str(out), "--no-progress", "--no-plots", *extra]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, csv_path):
    out = tmp_path_factory.mktemp("runs") / "done"
    assert main(_run_args(csv_path, out)) == 0
    return out


@pytest.fixture()
def run_dir(tmp_path, finished_run):
    """A private copy of a finished ncm run, in ``tmp_path/run``."""
    return shutil.copytree(finished_run, tmp_path / "run")


@pytest.fixture()
def victim(tmp_path):
    """A file of the user's, outside every run folder; the tests check it is untouched."""
    path = tmp_path / "home" / ".bashrc"
    path.parent.mkdir()
    path.write_text("export KEEP=1\n")
    return path


def _cli_error(capsys, argv, *needles):
    """Run the CLI: exit 2, one line on stderr, no traceback, holding each of ``needles``."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("cl-prompts: error: "), err
    for needle in needles:
        assert needle in err, err
    return err


def _checkpoint(run):
    return ckpt._latest_dir(run)[0]


def _rehash(run):
    """Recompute the manifest and LATEST after an edit, as an attacker would."""
    folder = _checkpoint(run)
    files = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": ckpt._sha256(p)}
             for p in ckpt._files(folder)}
    manifest = json.dumps({"format_version": ckpt.FORMAT_VERSION, "files": files})
    (folder / ckpt.MANIFEST).write_text(manifest)
    latest = ckpt.checkpoint_root(run) / ckpt.LATEST
    pointer = json.loads(latest.read_text())
    pointer["manifest_sha256"] = ckpt._sha256(folder / ckpt.MANIFEST)
    latest.write_text(json.dumps(pointer))


def _edit_json(path, edit):
    data = json.loads(path.read_text())
    data = edit(data) or data
    path.write_text(json.dumps(data))


def _edit_method(run, edit):
    _edit_json(_checkpoint(run) / "model" / "method.json", edit)
    _rehash(run)


def _snapshot(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


# ---------------------------------------------------------------- 1: the run lock follows a symlink
def test_01_a_symlinked_lock_file_is_refused_and_its_target_kept(tmp_path, run_dir, csv_path, victim, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / LOCK_FILE).symlink_to(victim)
    _cli_error(capsys, _run_args(csv_path, out), str(out / LOCK_FILE), "symlink")
    (run_dir / LOCK_FILE).symlink_to(victim)
    _cli_error(capsys, ["run", "--resume", run_dir], str(run_dir / LOCK_FILE), "symlink")
    with pytest.raises(UnsafeFileError, match="symlink"), run_lock(out):
        pass
    assert victim.read_text() == "export KEEP=1\n"


# ---------------------------------------------------------------- 2: deletions through a `checkpoint` link
def test_02_a_symlinked_checkpoint_folder_deletes_nothing_outside(tmp_path, run_dir, csv_path, capsys):
    sibling = tmp_path / "other-run"
    (sibling / ".config").mkdir(parents=True)
    (sibling / ".config" / "keep").write_text("mine")
    (sibling / "results.json").write_text("{}")
    shutil.rmtree(run_dir / "checkpoint")
    (run_dir / "checkpoint").symlink_to(sibling)
    before = _snapshot(sibling)
    _cli_error(capsys, ["run", "--resume", run_dir], "checkpoint", "symlink")
    _cli_error(capsys, [*_run_args(csv_path, run_dir), "--overwrite"], "symlink")
    with pytest.raises(UnsafeFileError):
        remove_stale_files(run_dir)
    assert _snapshot(sibling) == before


def test_02_stale_entries_that_are_links_are_unlinked_not_followed(tmp_path, victim):
    out = tmp_path / "r"
    out.mkdir()
    (out / ".staging-1234").symlink_to(victim.parent, target_is_directory=True)
    remove_stale_files(out)
    assert not os.path.lexists(out / ".staging-1234") and victim.read_text() == "export KEEP=1\n"
    with pytest.raises(UnsafeFileError, match="outside"):
        remove_inside(victim, out)


# ---------------------------------------------------------------- 3: remote code, pickles
def _remote_code_folder(tmp_path):
    folder = tmp_path / "custom-model"
    folder.mkdir()
    marker = tmp_path / "code-ran"
    (folder / "config.json").write_text(json.dumps({
        "model_type": "custom_encoder", "auto_map": {"AutoConfig": "custom.Cfg", "AutoModel": "custom.Model"}}))
    (folder / "custom.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return folder, marker


def test_03_remote_code_never_runs_without_the_flag(tmp_path, csv_path, capsys, monkeypatch):
    folder, marker = _remote_code_folder(tmp_path)
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_backbone(BackboneConfig(name_or_path=str(folder), local_files_only=True))
    args = _run_args(csv_path, tmp_path / "out")
    args[args.index("tiny-bert")] = str(folder)
    _cli_error(capsys, args, "custom code")
    assert not marker.exists()
    assert not BackboneConfig().trust_remote_code
    assert config_from_args(_parser().parse_args([*args, "--trust-remote-code"])).trust_remote_code


def test_03_every_transformers_load_gets_trust_remote_code(monkeypatch):
    import transformers

    import cl_prompts.backbones.loading as loading

    seen = []
    tiny = transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64)

    def record(name, answer):
        def fake(*args, **kwargs):
            seen.append((name, kwargs.get("trust_remote_code")))
            if answer is None:
                raise OSError("stop")
            return answer()
        return fake

    monkeypatch.setattr(loading, "hub_reachable", lambda *a, **k: True)  # online or not, the same loads
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", record("AutoConfig", lambda: tiny))
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", record("AutoModel", lambda: transformers.BertModel(tiny)))
    for name in ("AutoTokenizer", "AutoImageProcessor"):
        monkeypatch.setattr(getattr(transformers, name), "from_pretrained", record(name, None))
    with pytest.raises(OSError, match="stop"):
        loading.load_backbone(BackboneConfig(name_or_path="some/model"))
    backbone = type("B", (), {"config": BackboneConfig(name_or_path="some/vit"), "modality": "vision"})()
    loading.image_statistics(backbone)
    assert seen == [(n, False) for n in ("AutoConfig", "AutoModel", "AutoTokenizer", "AutoImageProcessor")]


def test_03_10_a_pickle_only_model_folder_is_refused_in_one_line(tmp_path, csv_path, capsys):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32}))
    torch.save({"w": torch.zeros(1)}, folder / "pytorch_model.bin")
    args = _run_args(csv_path, tmp_path / "out")
    args[args.index("tiny-bert")] = str(folder)
    _cli_error(capsys, args, str(folder), "pickle")


# ---------------------------------------------------------------- 4: saved paths leave the folder
def test_04_a_query_cache_path_outside_the_model_folder_is_refused(tmp_path, run_dir, capsys):
    poisoned = tmp_path / "cache.safetensors"
    poisoned.write_bytes(b"x")
    _edit_method(run_dir, lambda m: m["backbone_config"].update(query_cache_path=str(poisoned)))
    _cli_error(capsys, ["predict", run_dir, "hello"], "query_cache_path", "absolute path")
    _edit_method(run_dir, lambda m: m["backbone_config"].update(query_cache_path="../../../cache.safetensors"))
    _cli_error(capsys, ["predict", run_dir, "hello"], "points outside")
    _edit_method(run_dir, lambda m: m["backbone_config"].update(query_cache_path=None, local_files_only=False))
    _cli_error(capsys, ["predict", run_dir, "hello"], "backbone_config may set only", "local_files_only")


def test_04_modules_json_pooling_path_must_stay_in_the_folder(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    model = tmp_path / "models" / "m"
    model.mkdir(parents=True)
    (model / "modules.json").write_text(json.dumps([{"type": "x.Pooling", "path": "../../other"}]))
    with pytest.raises(UnsafeFileError, match="points outside"):
        checkpoint_pooling(model)
    (model / "modules.json").write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="modules.json .* must be a JSON list"):
        checkpoint_pooling(model)


def test_04_query_cache_rows_are_checked_like_every_tensor(tmp_path):
    backbone = tiny_text_backbone()
    meta = {"identity": describe(backbone.identity()), "weights": "w", "precision": "fp32"}
    path = tmp_path / "cache.safetensors"
    keys = torch.zeros(2, 16, dtype=torch.uint8)
    for features, problem in ((torch.full((2, 32), float("nan")), "NaN"), (torch.zeros(2, 7), "float rows"),
                              (torch.zeros(3, 32), "float rows")):
        save_file({"keys": keys, "features": features}, str(path), metadata={"format": "cl_prompts.query_cache/1", **meta})
        with pytest.raises(ValueError, match=problem):
            QueryCache().load(path, meta)
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00garbage!")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        QueryCache().load(path, meta)


# ---------------------------------------------------------------- 5: declared sizes
@pytest.mark.parametrize("edit, problem", [
    (lambda m: m.update(num_classes=10**9), "num_classes must be in"),
    (lambda m: m.update(num_classes=5), "seen_mask has shape"),
    (lambda m: m["config"].update(layers=10**8), "config.layers=100000000 declares a size that no saved tensor"),
    (lambda m: m["extra_state"].update(memory_size=10**9), "extra_state.memory_size=1000000000 declares a size"),
    (lambda m: m.update(experiences=[[0]] * 20000, finished=[True] * 20000), "at most 10000"),
    (lambda m: m["backbone_config"].update(max_length=10**9), "max_length must be an int in"),
], ids=["num_classes", "num_classes-vs-tensors", "config-size", "extra-state-size", "experiences", "max_length"])
def test_05_declared_sizes_are_checked_before_allocating(run_dir, capsys, edit, problem):
    _edit_method(run_dir, edit)
    start = time.perf_counter()
    _cli_error(capsys, ["predict", run_dir, "hello"], "method.json", problem)
    assert time.perf_counter() - start < 10


def test_05_index_strings_and_shards_with_huge_sizes_are_refused_quickly():
    from cl_prompts.index.faiss_utils import validate_factory_string

    start = time.perf_counter()
    with pytest.raises(ValueError, match="needs 1000000 keys to train"):
        validate_factory_string(32, "IVF1000000,Flat")
    with pytest.raises(ValueError, match="index_shards must be <= 1024"):
        PoolConfig(embed_dim=8, index_shards=10**6)
    assert time.perf_counter() - start < 5


# ---------------------------------------------------------------- 6: data paths that are not files
def test_06_fifos_and_devices_are_refused_as_data_files(tmp_path, run_dir, capsys):
    fifo = tmp_path / "texts.csv"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.csv"
    zero.symlink_to("/dev/zero")
    for data in (fifo, zero):
        start = time.perf_counter()
        _cli_error(capsys, ["calibrate", run_dir, "--file", data], str(data), "not a regular file")
        _cli_error(capsys, ["predict", run_dir, "--file", data], "not a regular file")
        _cli_error(capsys, ["run", "--benchmark", f"file:{data}", "--backbone", "tiny-bert", "--method", "ncm",
                            "--out", tmp_path / "o"], "not a regular file")
        assert time.perf_counter() - start < 10
    config = tmp_path / "c.json"
    os.mkfifo(config)
    _cli_error(capsys, ["run", "--config", config], "--config", "FIFO")
    with pytest.raises(UnsafeFileError, match="holds 2[0-9]* bytes, more than the 10 allowed"):
        read_json(tmp_path / "run" / "results.json", "results", max_bytes=10)


# ---------------------------------------------------------------- 7: calibration values
@pytest.mark.parametrize("edit, problem", [
    (lambda c: c.update(threshold=float("nan")), "threshold must be a finite number"),
    (lambda c: c.update(temperature=float("inf")), "temperature must be a finite number"),
    (lambda c: c.update(similarity_weight=float("nan")), "similarity_weight must be a finite number"),
    (lambda c: c["standardise"]["similarity"].__setitem__(1, 0.0), "standardise.similarity std"),
    (lambda c: c.pop("threshold"), "threshold must be"),
    (lambda c: c["standardise"].pop("similarity"), "standardise must hold"),
    (lambda c: c.update(score="nope"), "score must be one of"),
], ids=["nan-threshold", "inf-temperature", "nan-weight", "zero-std", "missing-threshold", "missing-part",
        "score"])
def test_07_calibration_values_are_checked_on_load(run_dir, capsys, edit, problem):
    calibration = {"score": "max_logit+similarity", "threshold": 0.1, "false_rejection": 0.05, "temperature": 1.0,
                   "source": "x", "similarity_weight": 1.0,
                   "standardise": {"max_logit": [0.0, 1.0], "similarity": [0.5, 0.1]}}
    edit(calibration)
    (run_dir / "calibration.json").write_text(json.dumps(calibration))
    _cli_error(capsys, ["predict", run_dir, "hello"], "calibration.json", problem)
    (run_dir / "calibration.json").unlink()
    _edit_method(run_dir, lambda m: m.update(calibration=calibration))
    _cli_error(capsys, ["predict", run_dir, "hello"], "saved calibration", problem)


# ---------------------------------------------------------------- 8: resume trusts next_experience
def test_08_a_resume_past_the_saved_checkpoints_is_refused(tmp_path, csv_path, capsys):
    out = tmp_path / "r"
    assert main(_run_args(csv_path, out)) == 0
    (out / "results.json").unlink()
    state = _checkpoint(out) / "state.json"
    _edit_json(state, lambda d: d["state"].update(next_experience=5))
    _rehash(out)
    _cli_error(capsys, ["run", "--resume", out], "state.json", "next_experience is 5")
    _edit_json(state, lambda d: d.update(experience=4) or d["state"].update(
        accuracy=d["state"]["accuracy"] + [[1.0] * 3, [1.0] * 4, [1.0] * 5],
        task_id=d["state"]["task_id"] + [[None] * 3, [None] * 4, [None] * 5],
        train_seconds=d["state"]["train_seconds"] + [0.0] * 3, eval_seconds=d["state"]["eval_seconds"] + [0.0] * 3))
    _rehash(out)
    _cli_error(capsys, ["run", "--resume", out], "state.json", "saved model finished 2 of 2")


# ---------------------------------------------------------------- 9: dtypes
def test_09_integer_tables_stored_as_floats_and_pool_dtypes_are_refused(tmp_path):
    backbone = tiny_text_backbone()
    model = build_model("linear_probe", backbone, 4)
    model.begin_experience(0, [0, 1])
    model.end_experience(0)
    model.save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "method.safetensors"
    tensors = load_file(str(weights))
    tensors["head.block0_classes"] = torch.tensor([0.0, 99.0])
    save_file(tensors, str(weights))
    with pytest.raises(ValueError, match="'head.block0_classes' has dtype torch.float32, the method stores torch.int64"):
        load_model(tmp_path / "m", backbone)
    pool = PromptPool(PoolConfig(embed_dim=8, prompt_length=2, top_k=1))
    pool.add_task(2)
    save_pool(pool, tmp_path / "p")
    file = tmp_path / "p" / "pool.safetensors"
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as fh:
        meta, saved = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    saved["keys"] = saved["keys"].to(torch.int32)
    save_file(saved, str(file), metadata=meta)
    with pytest.raises(ValueError, match="'keys' has dtype torch.int32; it must be a floating-point tensor"):
        PromptPool.from_pretrained(tmp_path / "p")


# ---------------------------------------------------------------- 10: one line, not a traceback
def test_10_shape_mismatch_and_garbage_weights_are_one_line(run_dir, capsys):
    weights = _checkpoint(run_dir) / "model" / "method.safetensors"
    tensors = load_file(str(weights))
    tensors["class_sums"] = tensors["class_sums"][:, :5].contiguous()
    save_file(tensors, str(weights))
    _rehash(run_dir)
    _cli_error(capsys, ["predict", run_dir, "hi"], "'class_sums' has shape")
    weights.write_bytes(b"\xff" * 64)
    _rehash(run_dir)
    _cli_error(capsys, ["predict", run_dir, "hi"], "not a valid safetensors file")


def test_10_deep_json_and_wrong_json_types_are_one_line(tmp_path, run_dir, capsys):
    deep = "[" * 100_000 + "]" * 100_000
    method = _checkpoint(run_dir) / "model" / "method.json"
    method.write_text(deep)
    _rehash(run_dir)
    _cli_error(capsys, ["predict", run_dir, "hi"], "nested too deeply")
    method.write_text("[]")
    _rehash(run_dir)
    _cli_error(capsys, ["predict", run_dir, "hi"], "method.json must be a JSON object, got list")
    latest = ckpt.checkpoint_root(run_dir) / ckpt.LATEST
    latest.write_text("[" * 5000 + "]" * 5000)  # LATEST is small: a deeper one is refused by its size
    _cli_error(capsys, ["predict", run_dir, "hi"], "LATEST", "nested too deeply")
    latest.write_text("[1]")
    _cli_error(capsys, ["run", "--resume", run_dir], "LATEST", "must be a JSON object")
    (run_dir / "results.json").write_text(deep)
    _cli_error(capsys, ["compare", run_dir], "results.json", "nested too deeply")
    for suffix in (".json", ".toml"):
        config = tmp_path / f"c{suffix}"
        config.write_text(deep if suffix == ".json" else "a = " + "[" * 5000 + "]" * 5000)
        _cli_error(capsys, ["run", "--config", config], "--config", "nested")
    texts = tmp_path / "t.json"
    texts.write_text(deep)
    _cli_error(capsys, ["predict", tmp_path / "missing", "--file", texts], "nested too deeply")


def test_10_a_calibration_list_and_a_huge_csv_field_are_one_line(tmp_path, run_dir, capsys):
    (run_dir / "calibration.json").write_text("[" * 100_000 + "]" * 100_000)
    _cli_error(capsys, ["predict", run_dir, "hi"], "calibration.json", "nested too deeply")
    (run_dir / "calibration.json").write_text("[]")
    _cli_error(capsys, ["predict", run_dir, "hi"], "calibration.json must be a JSON object")
    big = tmp_path / "big.csv"
    big.write_text('text,label\n"' + "a" * 200_000 + '",x\n')
    _cli_error(capsys, ["calibrate", run_dir, "--file", big, "--overwrite"], str(big), "field larger than field limit")


def test_10_wandb_without_an_api_key_is_one_line(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    from cl_prompts.results.loggers import RunLoggers

    def refuse(**kwargs):
        raise wandb.errors.UsageError("api_key not configured (no-tty)")

    monkeypatch.setattr(wandb, "init", refuse)
    with pytest.raises(ValueError, match="--log wandb: api_key not configured .*WANDB_MODE=offline"):
        RunLoggers(["wandb"], tmp_path, {}, "r")


# ---------------------------------------------------------------- 11: output injection
def test_11_class_names_cannot_forge_output_or_formulas(tmp_path, run_dir, capsys):
    names = ["book\nFORGED: in scope", "=HYPERLINK(\"http://x\")", "\x1b[2Jclear", "+1"]
    _edit_method(run_dir, lambda m: m.update(class_names=names))
    capsys.readouterr()
    assert main(["predict", str(run_dir), "hello", "--top-k", "4"]) == 0
    out = capsys.readouterr().out
    assert "\nFORGED" not in out and "\x1b" not in out and "book\\nFORGED" in out
    target = tmp_path / "p.csv"
    assert main(["predict", str(run_dir), "=1+1", "--top-k", "4", "--out", str(target)]) == 0
    import csv

    rows = list(csv.DictReader(target.open()))
    assert rows[0]["text"] == "'=1+1"
    assert all(row[k][:1] not in "=+-@" for row in rows for k in ("text", "labels"))


def test_11_compare_escapes_pipes_newlines_and_escapes(run_dir, capsys):
    _edit_json(run_dir / "results.json", lambda r: r.update(method="x | y\n| evil |\x1b[31m"))
    capsys.readouterr()
    assert main(["compare", str(run_dir)]) == 0
    table = capsys.readouterr().out
    assert "\x1b" not in table and len(table.strip().splitlines()) == 3
    assert "x \\| y\\n\\| evil \\|\\x1b[31m" in table


# ---------------------------------------------------------------- 12: symlinks on output
def test_12_compare_output_and_log_folders_are_never_followed(tmp_path, run_dir, victim, capsys):
    link = tmp_path / "table.md"
    link.symlink_to(victim)
    _cli_error(capsys, ["compare", run_dir, "--output", link], "--output", "symlink")
    assert victim.read_text() == "export KEEP=1\n"
    from cl_prompts.results.loggers import RunLoggers

    if not is_available("tensorboard"):
        pytest.skip("tensorboard is not installed")
    (run_dir / "tensorboard").symlink_to(victim.parent, target_is_directory=True)
    with pytest.raises(UnsafeFileError, match="tensorboard folder .* symlink"):
        RunLoggers(["tensorboard"], run_dir, {}, "r")
    assert sorted(p.name for p in victim.parent.iterdir()) == [".bashrc"]


# ---------------------------------------------------------------- 13: --config sets out / overwrite
@pytest.mark.parametrize("key, value", [("out", "/tmp/elsewhere"), ("overwrite", True), ("resume", True),
                                        ("trust_remote_code", True)])
def test_13_a_config_file_cannot_set_command_line_only_options(tmp_path, capsys, key, value):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"method": "ncm", key: value}))
    _cli_error(capsys, ["run", "--config", config], str(config), repr([key]), "command line only")


def test_13_plots_in_a_config_file_and_the_flag_do_not_clash(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("method = 'ncm'\nplots = false\nprogress = false\n")
    for flags in ([], ["--no-plots"], ["--no-progress"]):
        cfg = config_from_args(_parser().parse_args(["run", "--config", str(config), *flags]))
        assert (cfg.plots, cfg.progress, cfg.method) == (False, False, "ncm")
    config.write_text("method = 'ncm'\nplots = true\n")
    assert not config_from_args(_parser().parse_args(["run", "--config", str(config), "--no-plots"])).plots
