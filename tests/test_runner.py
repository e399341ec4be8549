"""The runner on a tiny random backbone and the synthetic text stream (seconds, offline)."""

import json

import pytest
import torch

import cl_prompts.run.checkpoints as ckpt
from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.data import synthetic_text_dataset
from cl_prompts.results import REQUIRED_KEYS, read_results, strip_timings, summary_table
from cl_prompts.run import RunConfig, run
from cl_prompts.run.checkpoints import checkpoint_root, has_checkpoint

METHOD = "prompt_tuning"  # trained by gradient, draws random prompts each experience


class Crash(RuntimeError):
    pass


def _data(n_exp=4):
    return synthetic_text_dataset(num_classes=8, num_experiences=n_exp, train_per_class=6,
                                  test_per_class=3)


def _run(out, method=METHOD, n_exp=4, **kw):
    kw.setdefault("epochs", 2)
    kw.setdefault("plots", False)
    cfg = RunConfig(method=method, backbone="tiny-bert", out=str(out), progress=False,
                    batch_size=8, **kw)
    return run(cfg, backbone=tiny_text_backbone(), dataset=_data(n_exp))


# growing_pool's default 5,000 random features are sized for real backbones, not this one
TINY_OPTIONS = {"growing_pool": {"projection_dim": 64, "ridge": 1.0, "prompted_ridge": 1.0}}


def _run_hook(out, hook, method=METHOD, **kw):
    cfg = RunConfig(method=method, backbone="tiny-bert", out=str(out), progress=False,
                    batch_size=8, epochs=2, plots=False,
                    method_options=dict(TINY_OPTIONS.get(method, {})), **kw)
    return run(cfg, backbone=tiny_text_backbone(), dataset=_data(), on_experience_end=hook)


def test_results_json_matches_the_format(tmp_path):
    r = _run(tmp_path, plots=True)
    saved = read_results(tmp_path)  # checks REQUIRED_KEYS
    assert set(REQUIRED_KEYS) <= set(saved)
    m = saved["accuracy_matrix"]
    assert len(m) == 4 and all(len(row) == 4 for row in m)
    assert all(m[i][j] is None for i in range(4) for j in range(i + 1, 4))
    assert all(0 <= m[i][j] <= 100 for i in range(4) for j in range(i + 1))
    assert saved["num_experiences"] == 4 and saved["method"] == METHOD
    assert saved["benchmark"] == "synthetic" and saved["config"]["seed"] == 0
    assert saved["experiences"] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert saved["final_average_accuracy"] == pytest.approx(sum(m[-1]) / 4)
    assert saved["versions"]["torch"] == torch.__version__.split("+")[0]
    assert saved["train_seconds"] > 0 and saved["peak_memory_mb"] > 0
    for name in ("accuracy_matrix.png", "accuracy_over_time.png", "summary.md"):
        assert (tmp_path / name).stat().st_size > 0
    assert has_checkpoint(tmp_path)
    assert r["accuracy_matrix"] == m


@pytest.mark.parametrize("method", [METHOD, "growing_pool"])  # growing_pool: keys in a faiss index
def test_resume_after_crash_gives_the_same_matrix(tmp_path, method):
    full = _run_hook(tmp_path / "full", None, method=method)

    def crash_after_second(e, state):
        if e == 1:  # experience 2 done and checkpointed
            raise Crash("killed")

    with pytest.raises(Crash):
        _run_hook(tmp_path / "cut", crash_after_second, method=method)
    assert not (tmp_path / "cut" / "results.json").exists()
    seen = []
    resumed = _run_hook(tmp_path / "cut", lambda e, s: seen.append(e), method=method, resume=True)
    assert seen == [2, 3]  # only the missing experiences were trained
    assert resumed["accuracy_matrix"] == full["accuracy_matrix"]
    if method == "growing_pool":  # one key per class, searched by faiss (installed here)
        assert full["key_search"] == {"index": "flat", "backend": "faiss", "keys": 8}
    assert resumed["resumed_at"] == [2] and resumed["world_sizes"] == [1, 1]  # one entry per start
    assert strip_timings({**resumed, "resumed_at": [], "world_sizes": [], "config": None}) == strip_timings(
        {**full, "resumed_at": [], "world_sizes": [], "config": None}
    )


def checkpointed_experiences(out) -> list[int]:
    """The experience of each checkpoint folder in ``out`` (the runner keeps the latest only)."""
    root = checkpoint_root(out)
    return sorted(int(p.name.split("-")[1]) for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def test_checkpoints_are_written_at_most_every_checkpoint_every_seconds_and_after_the_last(tmp_path):
    latest = {}
    full = _run_hook(tmp_path / "every", lambda e, s: latest.setdefault(e, checkpointed_experiences(tmp_path / "every")))
    assert latest == {0: [0], 1: [1], 2: [2], 3: [3]}  # default auto, quick writes: after every experience
    latest.clear()
    sparse = _run_hook(tmp_path / "sparse", lambda e, s: latest.setdefault(e, checkpointed_experiences(tmp_path / "sparse")),
                       checkpoint_every=1e9)
    assert latest == {0: [], 1: [], 2: [], 3: [3]}  # the interval never passes: the last one only
    assert sparse["accuracy_matrix"] == full["accuracy_matrix"]

    def crash_after_third(e, state):
        if e == 2:
            raise Crash("killed")

    with pytest.raises(Crash):
        _run_hook(tmp_path / "cut", crash_after_third, checkpoint_every=1e9)
    assert not has_checkpoint(tmp_path / "cut")  # nothing to resume: the experiences are all run again


def test_auto_checkpoints_after_a_slow_write_wait_for_twenty_times_its_time(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "AUTO_SLOW_WRITE", -1.0)  # every write counts as slow ...
    monkeypatch.setattr(ckpt, "AUTO_WORK_PER_WRITE", 1e9)  # ... and no experience is long enough
    latest = {}
    out = tmp_path / "auto"
    slow = _run_hook(out, lambda e, s: latest.setdefault(e, checkpointed_experiences(out)))
    assert latest == {0: [0], 1: [0], 2: [0], 3: [3]}  # the first (nothing written yet) and the last
    every = _run_hook(tmp_path / "every", lambda e, s: None, checkpoint_every=0)
    assert slow["accuracy_matrix"] == every["accuracy_matrix"]


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf"), "300", "never", None])
def test_checkpoint_every_must_be_seconds(seconds):
    with pytest.raises(ValueError, match="checkpoint_every must be a number of seconds"):
        RunConfig(checkpoint_every=seconds)


def test_checkpoint_every_defaults_to_auto():
    assert RunConfig().checkpoint_every == "auto" and RunConfig(checkpoint_every=0).checkpoint_every == 0


def test_resume_with_other_settings_is_refused(tmp_path):
    with pytest.raises(Crash):
        _run_hook(tmp_path, lambda e, s: (_ for _ in ()).throw(Crash()))
    with pytest.raises(ValueError, match=r"mismatch in run\.epochs"):
        run(RunConfig(method=METHOD, backbone="tiny-bert", out=str(tmp_path), progress=False,
                      batch_size=8, epochs=3, resume=True, plots=False),
            backbone=tiny_text_backbone(), dataset=_data())


def test_same_seed_same_json_apart_from_timings(tmp_path):
    a = _run(tmp_path, seed=5)
    b = _run(tmp_path, seed=5, overwrite=True)
    a_cfg, b_cfg = dict(a["config"]), dict(b["config"])
    assert a_cfg.pop("overwrite") is False and b_cfg.pop("overwrite") is True
    assert a_cfg == b_cfg
    assert strip_timings({**a, "config": None}) == strip_timings({**b, "config": None})
    c = _run(tmp_path, seed=6, overwrite=True)
    assert c["seed"] == 6


def test_out_dir_with_results_is_refused_and_overwrite_keeps_user_files(tmp_path):
    _run(tmp_path, n_exp=2)
    before = (tmp_path / "results.json").read_bytes()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--overwrite"):
        _run(tmp_path, n_exp=2)
    assert (tmp_path / "results.json").read_bytes() == before
    _run(tmp_path, n_exp=2, overwrite=True, seed=1)
    assert json.loads((tmp_path / "results.json").read_text())["seed"] == 1
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert len([p for p in checkpoint_root(tmp_path).iterdir() if p.is_dir()]) == 1


def test_overwrite_with_a_bad_option_keeps_the_old_results(tmp_path):
    _run(tmp_path, n_exp=2)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(TypeError, match="no_such_option"):
        _run(tmp_path, n_exp=2, overwrite=True, method_options={"no_such_option": 1})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert has_checkpoint(tmp_path)


def test_statistics_only_method_runs_without_optimizer(tmp_path):
    r = _run(tmp_path, method="ncm", n_exp=2)
    assert r["method"] == "ncm" and len(r["accuracy_matrix"]) == 2
    # separable keywords + class means: the tiny model already does better than chance (50%)
    assert r["accuracy_matrix"][0][0] > 50.0


def test_quick_subsets_the_data(tmp_path):
    big = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=40,
                                 test_per_class=20)
    cfg = RunConfig(method="ncm", backbone="tiny-bert", out=str(tmp_path), progress=False,
                    quick=True, plots=False)
    r = run(cfg, backbone=tiny_text_backbone(), dataset=big)
    # QUICK keeps 10 train samples per class (ncm sees each once): 4 classes x 10
    assert r["train_samples"] == 40
    assert r["config"]["quick"] is True


def test_summary_table_lists_each_experience(tmp_path):
    text = summary_table(_run(tmp_path, n_exp=2))
    assert "| 0 |" in text and "| 1 |" in text and "final average accuracy" in text


@pytest.mark.parametrize(
    "kw, err, match",
    [
        (dict(epochs=0), ValueError, "epochs must be an int >= 1"),
        (dict(batch_size=1.5), ValueError, "batch_size"),
        (dict(benchmark="mnist"), ValueError, "benchmark must be"),
        (dict(device="tpu"), ValueError, "device must be"),
        (dict(resume=True, overwrite=True, out="x"), ValueError, "resume and overwrite"),
        (dict(resume=True), ValueError, "resume needs out"),
        (dict(seed="1"), TypeError, "seed must be an int"),
        (dict(precision="half"), ValueError, r"precision must be one of \['fp32', 'bf16', 'fp16', 'auto'\]"),
    ],
)
def test_run_config_validation(kw, err, match):
    with pytest.raises(err, match=match):
        RunConfig(**kw)


def test_callback_drawing_random_numbers_does_not_change_the_run(tmp_path):
    plain = _run(tmp_path / "plain", plots=False)

    def noisy(e, state):  # e.g. a user's callback that evaluates with a DataLoader
        torch.rand(1000)
        torch.randperm(50)

    hooked = _run_hook(tmp_path / "hooked", noisy)
    assert strip_timings(hooked) == {**strip_timings(plain), "config": strip_timings(hooked)["config"]}
    assert hooked["accuracy_matrix"] == plain["accuracy_matrix"]


def test_default_run_folders_tell_different_runs_apart():
    base = RunConfig(backbone="tiny-bert")
    assert base.run_dir("clinc150").as_posix() == "runs/clinc150-growing_pool-seed0"
    variants = [RunConfig(epochs=3), RunConfig(experiences=5), RunConfig(class_order_seed=7),
                RunConfig(quick=True), RunConfig(eval_split="val"), RunConfig(seed=1), RunConfig(method="ncm"),
                RunConfig(precision="bf16")]
    names = {v.run_dir("clinc150").name for v in [base, *variants]}
    assert len(names) == len(variants) + 1
    full = RunConfig(epochs=3, experiences=5, class_order_seed=7, quick=True, eval_split="val", precision="bf16")
    assert full.run_dir("x").name == "x-growing_pool-seed0-ep3-exp5-order7-quick-val-bf16"
    assert RunConfig(out="mine").run_dir("x").as_posix() == "mine"


def test_every_step_clips_and_the_cosine_schedule_ends_each_experience_at_zero(tmp_path, optimizer_spies):
    clipped, schedules = optimizer_spies
    # 4 experiences of 12 training samples, batch 8, 2 epochs: 4 steps each
    _run(tmp_path / "r", method_options={"grad_clip": 1e-3, "lr_schedule": "cosine"})
    assert len(clipped) == 16 and all(m == 1e-3 for m, _, _ in clipped)
    assert all(after <= 1e-3 * (1 + 1e-4) for _, _, after in clipped)
    assert all(before > 1e-3 for _, before, _ in clipped)  # the threshold did act
    assert [steps for _, steps in schedules] == [4] * 4
    assert all(s.last_epoch == 4 and s.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12) for s, _ in schedules)
    saved = read_results(tmp_path / "r")["config"]["method_options"]
    assert saved == {"grad_clip": 1e-3, "lr_schedule": "cosine"}
