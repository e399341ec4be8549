import json
from pathlib import Path

import pytest

from cl_prompts.results import (
    REQUIRED_KEYS,
    build_results,
    peak_memory_mb,
    read_results,
    strip_timings,
    versions,
    write_results,
)

MATRIX = [[90.0, None], [80.0, 70.0]]


def _results(**kw):
    args = dict(
        benchmark="toy", method="l2p", backbone="tiny", seed=3, accuracy_matrix=MATRIX,
        train_seconds=2.0, train_samples=100, eval_seconds=1.0, config={"lr": 0.1, "seed": 3},
    )
    args.update(kw)
    return build_results(**args)


def test_build_results_has_every_required_key_and_metric_values():
    r = _results()
    assert set(REQUIRED_KEYS) <= set(r)
    assert r["num_experiences"] == 2
    assert r["final_average_accuracy"] == pytest.approx(75.0)
    assert r["average_forgetting"] == pytest.approx(10.0)
    assert r["backward_transfer"] == pytest.approx(-10.0)
    assert r["train_samples_per_second"] == pytest.approx(50.0)
    assert r["peak_memory_source"] == "process_max_rss"
    assert r["peak_memory_mb"] > 0


def test_versions_lists_the_stack_without_importing_it():
    v = versions()
    for key in ("python", "torch", "transformers", "avalanche", "faiss"):
        assert key in v
    assert v["torch"] and v["avalanche"]


def test_versions_name_the_commit_of_the_checkout_that_runs():
    import subprocess

    import cl_prompts
    from cl_prompts.results.record import source_commit

    root = Path(cl_prompts.__file__).resolve().parents[1]
    if not (root / ".git").exists():
        assert source_commit() is None
        return
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    commit = versions()["cl_prompts_commit"]
    assert commit in (head, head + "+dirty")


def test_rewritten_benchmark_figures_leave_the_commit_clean_and_code_changes_do_not(tmp_path):
    import shutil
    import subprocess

    from cl_prompts.results.record import source_commit

    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "benchmarks" / "results" / "run.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    head = git("rev-parse", "HEAD")
    (tmp_path / "benchmarks" / "results" / "run.json").write_text('{"acc": 1}\n')
    assert source_commit(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert source_commit(tmp_path) == head + "+dirty"
    assert source_commit(tmp_path / "benchmarks") is None  # not the root of a checkout


def test_peak_memory_cpu_is_process_rss():
    mb, source = peak_memory_mb("cpu")
    assert source == "process_max_rss" and 1 < mb < 10**6


def test_write_then_read_round_trips_and_null_for_unseen(tmp_path):
    r = _results(extra={"final_task_id_accuracy": 55.0})
    path = write_results(r, tmp_path)
    assert path == tmp_path / "results.json"
    text = path.read_text()
    assert "NaN" not in text
    back = read_results(tmp_path)
    assert back["accuracy_matrix"] == [[90.0, None], [80.0, 70.0]]
    assert back["final_task_id_accuracy"] == 55.0
    assert back["config"] == {"lr": 0.1, "seed": 3}


def test_write_refuses_incomplete_results(tmp_path):
    r = _results()
    del r["versions"]
    with pytest.raises(ValueError, match="versions"):
        write_results(r, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_read_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="results file not found"):
        read_results(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{trunc")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_results(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text(json.dumps({"method": "x"}))
    with pytest.raises(ValueError, match="missing required keys"):
        read_results(tmp_path / "partial.json")


def test_strip_timings_removes_only_varying_keys():
    a, b = _results(train_seconds=1.0), _results(train_seconds=9.0)
    assert a != b
    assert strip_timings(a) == strip_timings(b)
    assert "accuracy_matrix" in strip_timings(a)


def test_negative_time_rejected():
    with pytest.raises(ValueError, match="train_seconds"):
        _results(train_seconds=-1.0)
