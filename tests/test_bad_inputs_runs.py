"""Rows 40-58 of docs/bad_inputs.md: hostile runs, resumes and saved files. Each case is
refused with a message naming it, or handled so that no result is wrong or lost."""

import dataclasses
import json
import os
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

import cl_prompts.run.checkpoints as ckpt
from cl_prompts.backbones import PromptedBackbone
from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.cli import main
from cl_prompts.data import TextDataset, TextSplit, synthetic_text_dataset
from cl_prompts.methods import build_model, load_model
from cl_prompts.pool import PoolConfig, PromptPool
from cl_prompts.results import compare_dirs, read_results
from cl_prompts.run import RunConfig, run
from cl_prompts.run.loop import warn_truncated
from cl_prompts.run.out_dir import LOCK_FILE, RunDirBusyError, run_lock
from cl_prompts.run.runner import warn_evaluation_cost


class Crash(RuntimeError):
    pass


@pytest.fixture(scope="module")
def backbone():
    return tiny_text_backbone()


def _data(n_exp=3):
    return synthetic_text_dataset(num_classes=6, num_experiences=n_exp, train_per_class=4, test_per_class=2)


def _cfg(out, method="ncm", **kw):
    return RunConfig(method=method, backbone="tiny-bert", out=str(out), progress=False, plots=False,
                     batch_size=8, **kw)


def _crash_after(n):
    def hook(e, state):
        if e == n:
            raise Crash("killed")
    return hook


def _write_csv(path, rows):
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    return path


# ---------------------------------------------------------------- lost or wrong results (40-45)
def test_40_resume_with_changed_data_is_refused(tmp_path, backbone):
    data = _data()
    with pytest.raises(Crash):
        run(_cfg(tmp_path), backbone=backbone, dataset=data, on_experience_end=_crash_after(0))
    labels = list(data.train.labels)
    labels[0], labels[-1] = labels[-1], labels[0]  # two labels swapped in the file
    changed = TextDataset(TextSplit(list(data.train.texts), labels), data.test, list(data.class_names),
                          data.experiences, data.name)
    with pytest.raises(ValueError, match="mismatch in data: the texts, labels, splits or class names differ"):
        run(_cfg(tmp_path, resume=True), backbone=backbone, dataset=changed)
    run(_cfg(tmp_path, resume=True), backbone=backbone, dataset=data)  # the same data still resumes


def test_41_two_runs_on_one_out_folder(tmp_path, backbone):
    with run_lock(tmp_path):  # another run holds the folder
        with pytest.raises(RunDirBusyError, match=rf"in use by another run \(pid {os.getpid()} on host"):
            run(_cfg(tmp_path), backbone=backbone, dataset=_data())
    assert not (tmp_path / "results.json").exists()
    # a lock file left by a killed run holds no flock: it is stale, named, and taken over
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 999999, "host": "gone", "started": "then"}))
    with pytest.warns(UserWarning, match="stale lock .*pid 999999 on host gone"):
        run(_cfg(tmp_path), backbone=backbone, dataset=_data())
    assert read_results(tmp_path) and not (tmp_path / LOCK_FILE).exists()


def test_42_failed_overwrite_keeps_the_old_results(tmp_path, backbone):
    run(_cfg(tmp_path), backbone=backbone, dataset=_data())
    before = {f: (tmp_path / f).read_bytes() for f in ("results.json", "summary.md")}
    latest = (ckpt.checkpoint_root(tmp_path) / ckpt.LATEST).read_bytes()
    with pytest.raises(Crash):  # e.g. Ctrl-C, divergence or a full disk in the new run
        run(_cfg(tmp_path, overwrite=True, seed=1), backbone=backbone, dataset=_data(),
            on_experience_end=_crash_after(1))
    assert {f: (tmp_path / f).read_bytes() for f in before} == before
    assert (ckpt.checkpoint_root(tmp_path) / ckpt.LATEST).read_bytes() == latest
    new = run(_cfg(tmp_path, overwrite=True, seed=1), backbone=backbone, dataset=_data())
    assert read_results(tmp_path)["config"]["seed"] == 1 == new["config"]["seed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "results.json", "summary.md"]
    assert ckpt.latest_model_dir(tmp_path).is_dir()


@pytest.mark.parametrize("manifest", ["", "{}", "[]", "null", '{"files": {}}'])
def test_43_empty_or_partial_manifest_is_refused(tmp_path, backbone, manifest):
    model = build_model("ncm", backbone, num_classes=2)
    folder = ckpt.save_checkpoint(tmp_path, model, experience=0, state={}, identity={"method": "ncm"})
    (folder / ckpt.MANIFEST).write_text(manifest)
    with pytest.raises(ValueError, match="does not match the hash"):
        ckpt.load_checkpoint(tmp_path, backbone, identity={"method": "ncm"})
    # the same manifest with a matching hash in LATEST: still refused, every file must be listed
    pointer = json.loads((ckpt.checkpoint_root(tmp_path) / ckpt.LATEST).read_text())
    pointer["manifest_sha256"] = ckpt._sha256(folder / ckpt.MANIFEST)
    (ckpt.checkpoint_root(tmp_path) / ckpt.LATEST).write_text(json.dumps(pointer))
    with pytest.raises(ValueError, match="corrupted|must map every file|does not list"):
        ckpt.load_checkpoint(tmp_path, backbone, identity={"method": "ncm"})


def test_43_tensor_edited_behind_the_manifest_is_refused(tmp_path, backbone):
    model = build_model("ncm", backbone, num_classes=2)
    folder = ckpt.save_checkpoint(tmp_path, model, experience=0, state={}, identity={"method": "ncm"})
    f = folder / "model" / "method.safetensors"
    tensors = load_file(str(f))
    save_file({k: -v if v.is_floating_point() else v for k, v in tensors.items()}, str(f))
    with pytest.raises(ValueError, match="method.safetensors is truncated or corrupted"):
        ckpt.load_checkpoint(tmp_path, backbone, identity={"method": "ncm"})


def _saved(tmp_path, backbone, method, **options):
    model = build_model(method, backbone, num_classes=4, **options)
    for e, classes in enumerate([[0, 1], [2, 3]]):
        model.begin_experience(e, classes)
        inputs = backbone.tokenize(["a b c", "d e f", "g h i", "j k l"])
        with torch.no_grad():
            model.observe(inputs, torch.tensor([classes[0], classes[1]] * 2))
        model.end_experience(e)
    model.save_pretrained(tmp_path)
    return tmp_path / "method.safetensors"


@pytest.mark.parametrize("method, options, tensor, value, match", [
    ("ncm", {}, "class_sums", float("nan"), "'class_sums' holds NaN or inf"),
    ("ncm", {}, "class_counts", -3.0, "'class_counts' holds negative counts"),
    ("growing_pool", {"projection_dim": 16}, "class_task", 7, r"'class_task' holds values in \[0, 7\], outside \[-1, 2\)"),
    ("growing_pool", {"projection_dim": 16}, "pool.usage", -1, r"'pool.usage' holds values in \[-1, .*outside >= 0"),
    ("growing_pool", {"projection_dim": 16}, "head.weights.0", float("inf"), "'head.weights.0' holds NaN or inf"),
])
def test_44_non_finite_or_out_of_range_tensors_are_refused(tmp_path, backbone, method, options, tensor, value, match):
    f = _saved(tmp_path, backbone, method, **options)
    tensors = load_file(str(f))
    tensors[tensor] = tensors[tensor].clone()
    tensors[tensor].view(-1)[0] = value
    save_file(tensors, str(f))
    with pytest.raises(ValueError, match="method.safetensors: tensor " + match):
        load_model(tmp_path, backbone)


@pytest.mark.parametrize("tensor, value, match", [
    ("frozen_prompts", float("inf"), "'frozen_prompts' holds NaN or inf"),
    ("usage", -2, "'usage' must hold non-negative integer counts"),
])
def test_45_pool_file_with_bad_tensors_is_refused(tmp_path, tensor, value, match):
    pool = PromptPool(PoolConfig(embed_dim=8, prompt_length=2, top_k=2, index="torch"))
    pool.add_task(num_prompts=3)
    pool.add_task(num_prompts=2)
    pool.save_pretrained(tmp_path)
    f = tmp_path / "pool.safetensors"
    from safetensors import safe_open

    with safe_open(str(f), framework="pt") as fh:
        meta, tensors = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    tensors[tensor].view(-1)[0] = value
    save_file(tensors, str(f), metadata=meta)
    with pytest.raises(ValueError, match=match):
        PromptPool.from_pretrained(tmp_path)


# ---------------------------------------------------------------- late or unclear errors (46-58)
@pytest.mark.parametrize("spec, match", [
    ("HNSW0", r"a small index of it fails \(faiss aborted the process"),
    ("IVF0,Flat", "a small index of it fails"),
    ("IDMap,Flat", "drop the IDMap prefix"),
    ("IDMap2,Flat", "drop the IDMap prefix"),
])
def test_46_faiss_strings_that_fail_late_are_refused_up_front(spec, match):
    pytest.importorskip("faiss")
    with pytest.raises(ValueError, match=match):
        PromptPool(PoolConfig(embed_dim=8, prompt_length=2, top_k=2, index=spec))


def test_47_resume_of_a_finished_run_leaves_its_results(tmp_path, backbone, monkeypatch):
    import cl_prompts.results as res

    real = res.peak_memory_mb
    monkeypatch.setattr(res, "peak_memory_mb", lambda device="cpu": (123456.0, "process_max_rss"))
    with pytest.raises(Crash):
        run(_cfg(tmp_path), backbone=backbone, dataset=_data(), on_experience_end=_crash_after(1))
    monkeypatch.setattr(res, "peak_memory_mb", real)
    done = run(_cfg(tmp_path, resume=True), backbone=backbone, dataset=_data())
    assert done["peak_memory_mb"] == 123456.0  # the largest of the two processes
    saved = (tmp_path / "results.json").read_bytes()
    again = run(_cfg(tmp_path, resume=True), backbone=backbone, dataset=_data())
    assert (tmp_path / "results.json").read_bytes() == saved
    assert again["accuracy_matrix"] == done["accuracy_matrix"]


def test_48_max_length_beyond_the_model_positions(backbone):
    too_long = dataclasses.replace(backbone.config, max_length=backbone.max_tokens + 1)
    with pytest.raises(ValueError, match=rf"max_length={backbone.max_tokens + 1} is more than the "
                                         rf"{backbone.max_tokens} token positions .*--max-length {backbone.max_tokens}"):
        PromptedBackbone(backbone.model, too_long, backbone.tokenizer)
    text = " ".join(["word"] * (backbone.max_tokens + 20))
    with pytest.warns(UserWarning, match=rf"the model takes at most {backbone.max_tokens} tokens") as caught:
        warn_truncated(backbone, [text])
    assert "raise --max-length" not in str(caught[0].message)


def test_49_divergent_training_one_line_exit_2(tmp_path, capsys):
    data = _write_csv(tmp_path / "d.csv", [(f"w{i} alpha", "a") for i in range(8)] + [(f"w{i} beta", "b") for i in range(8)])
    code = main(["run", "--benchmark", f"file:{data}", "--backbone", "tiny-bert", "--method", "prompt_tuning",
                 "--experiences", "1", "--batch-size", "4", "--set", "lr=1e30", "--out", str(tmp_path / "o"), "--no-progress", "--no-plots"])
    err = capsys.readouterr().err
    assert code == 2 and "training diverged in experience 0" in err and "--lr" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_50_disk_full_during_a_checkpoint_keeps_the_last_one(tmp_path, backbone, monkeypatch):
    calls = []
    real = ckpt.save_file

    def full_on_second(tensors, path, *a, **k):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(tensors, path, *a, **k)

    monkeypatch.setattr(ckpt, "save_file", full_on_second)
    with pytest.raises(OSError, match="could not write the checkpoint of experience 1 .*No space left.*"
                                      "previous checkpoint is kept"):
        run(_cfg(tmp_path), backbone=backbone, dataset=_data())
    monkeypatch.setattr(ckpt, "save_file", real)
    left = sorted(p.name for p in ckpt.checkpoint_root(tmp_path).iterdir())
    assert left[0] == ckpt.LATEST and len(left) == 2 and left[1].startswith("exp-0000")
    resumed = run(_cfg(tmp_path, resume=True), backbone=backbone, dataset=_data())
    assert resumed["resumed_at"] == [1]


def test_51_experience_without_test_samples_is_found_before_training(tmp_path, backbone):
    rows = [(f"w{i} alpha", "a") for i in range(6)] + [(f"w{i} beta", "b") for i in range(6)] + [("lonely", "z")]
    data = _write_csv(tmp_path / "d.csv", rows)
    trained = []
    cfg = dataclasses.replace(_cfg(tmp_path / "o"), benchmark=f"file:{data}", experiences=3)
    with pytest.raises(ValueError, match=r"experience 2 \(classes \['z'\]\) has no test samples; \['z'\] have a "
                                         r"single row, which cannot be split into train and test"):
        run(cfg, backbone=backbone, on_experience_end=lambda e, s: trained.append(e))
    assert trained == [] and not (tmp_path / "o").exists()  # no empty folder left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_51_unwritable_out_is_found_before_training(tmp_path, backbone):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="out dir .*ro is not writable"):
            run(_cfg(out), backbone=backbone, dataset=_data())
    finally:
        out.chmod(0o700)


def test_52_kill_during_the_first_checkpoint_restarts_cleanly(tmp_path, backbone, capsys):
    partial = ckpt.checkpoint_root(tmp_path) / ".tmp-exp-0000-deadbeef" / "model"
    partial.mkdir(parents=True)
    (partial / "method.safetensors").write_bytes(b"half")
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "no complete checkpoint to resume" in capsys.readouterr().err
    run(_cfg(tmp_path), backbone=backbone, dataset=_data())  # a fresh run starts over
    assert not partial.parent.exists() and read_results(tmp_path)


def test_53_ctrl_c_ends_with_one_line(tmp_path, capsys, monkeypatch):
    import cl_prompts.run

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(cl_prompts.run, "run", interrupted)  # the CLI's run
    assert main(["run", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err.startswith("cl-prompts: interrupted") and err.count("\n") == 1


def test_54_compare_skips_unfinished_runs(tmp_path, backbone):
    run(_cfg(tmp_path / "done"), backbone=backbone, dataset=_data())
    (tmp_path / "stopped" / "checkpoint").mkdir(parents=True)
    with pytest.warns(UserWarning, match="skipping .*stopped: no results.json"):
        table = compare_dirs([tmp_path / "done", tmp_path / "stopped"])
    assert table.count("| ncm |") == 1


def test_55_written_files_follow_the_umask(tmp_path, backbone):
    old = os.umask(0o022)
    try:
        run(_cfg(tmp_path, method="growing_pool", method_options={"projection_dim": 16}),
            backbone=backbone, dataset=_data())
    finally:
        os.umask(old)
    model = ckpt.latest_model_dir(tmp_path)
    for f in (tmp_path / "results.json", tmp_path / "summary.md",
              ckpt.checkpoint_root(tmp_path) / ckpt.LATEST, model / "method.safetensors"):
        assert oct(f.stat().st_mode & 0o777) == oct(0o644), f


def test_56_stale_temporary_files_are_cleaned_up(tmp_path, backbone):
    with pytest.raises(Crash):
        run(_cfg(tmp_path), backbone=backbone, dataset=_data(), on_experience_end=_crash_after(1))
    stale = [tmp_path / ".results.json.k1ll3d.tmp", ckpt.checkpoint_root(tmp_path) / ".LATEST.x.tmp",
             ckpt.checkpoint_root(tmp_path) / ".tmp-exp-0002-deadbeef"]
    stale[0].write_text("{")
    stale[1].write_text("{")
    stale[2].mkdir()
    run(_cfg(tmp_path, resume=True), backbone=backbone, dataset=_data())
    assert not any(p.exists() for p in stale)


def test_57_eval_every_thins_out_the_evaluation(tmp_path, backbone):
    full = run(_cfg(tmp_path / "full"), backbone=backbone, dataset=_data(4))
    thin = run(_cfg(tmp_path / "thin", eval_every=2), backbone=backbone, dataset=_data(4))
    m = thin["accuracy_matrix"]
    assert m[0] == [None] * 4 and m[2] == [None] * 4
    assert m[1] == full["accuracy_matrix"][1] and m[3] == full["accuracy_matrix"][3]
    assert thin["final_average_accuracy"] == full["final_average_accuracy"]
    final = run(_cfg(tmp_path / "final", eval_every=0), backbone=backbone, dataset=_data(4))
    assert [row[0] is None for row in final["accuracy_matrix"]] == [True, True, True, False]
    assert final["average_forgetting"] is None and final["backward_transfer"] is None


def test_58_many_experiences_warn_about_the_evaluation_cost():
    with pytest.warns(UserWarning, match="1000 experiences: .*--eval-every N or --eval-final-only"):
        warn_evaluation_cost(1000, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_evaluation_cost(1000, 0)
        warn_evaluation_cost(10, 1)
