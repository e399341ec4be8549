import pytest

from cl_prompts.results import build_results, compare_dirs, compare_table, mean_std, write_results


def _run(tmp_path, name, method, seed, acc, lr=0.1, task_id=None, progress=True, **config):
    extra = {"final_task_id_accuracy": task_id} if task_id is not None else None
    r = build_results(
        benchmark="toy", method=method, backbone="tiny", seed=seed,
        accuracy_matrix=[[acc, None], [acc, acc]], train_seconds=10.0, train_samples=10,
        eval_seconds=1.0, config={"lr": lr, "seed": seed, "out": str(tmp_path / name), "progress": progress, **config},
        extra=extra,
    )
    (tmp_path / name).mkdir(parents=True)
    write_results(r, tmp_path / name)
    return r


def test_mean_std_formats():
    assert mean_std([1.0, 3.0]) == "2.0 ± 1.4"
    assert mean_std([5.0]) == "5.0"
    assert mean_std([None]) == "-"


def test_compare_groups_seeds_and_reports_mean_std(tmp_path):
    _run(tmp_path, "a1", "l2p", 0, 80.0, task_id=50.0)
    _run(tmp_path, "a2", "l2p", 1, 90.0, task_id=70.0)
    _run(tmp_path, "b1", "ncm", 0, 70.0)
    table = compare_dirs([tmp_path])
    lines = table.strip().splitlines()
    assert len(lines) == 4  # header, rule, two setups
    l2p = next(line for line in lines if line.startswith("| l2p"))
    assert "85.0 ± 7.1" in l2p and "0,1" in l2p and "60.0 ± 14.1" in l2p
    ncm = next(line for line in lines if line.startswith("| ncm"))
    assert "70.0" in ncm and ncm.rstrip(" |").endswith("-")


def test_compare_groups_runs_that_differ_only_in_printing(tmp_path):
    _run(tmp_path, "a", "l2p", 0, 80.0, progress=True)
    _run(tmp_path, "b", "l2p", 1, 90.0, progress=False)
    lines = compare_dirs([tmp_path]).strip().splitlines()
    assert len(lines) == 3 and "85.0 ± 7.1" in lines[2]


def test_compare_separates_different_configs_of_one_method(tmp_path):
    _run(tmp_path, "a", "l2p", 0, 80.0, lr=0.1)
    _run(tmp_path, "b", "l2p", 0, 60.0, lr=0.01)
    table = compare_dirs([tmp_path / "a", tmp_path / "b"])
    assert "l2p (lr=0.1)" in table and "l2p (lr=0.01)" in table


def test_the_backbone_column_names_a_query_encoder(tmp_path):
    _run(tmp_path, "a", "ranpac", 0, 80.0, query_encoder="minilm")
    _run(tmp_path, "b", "ranpac", 0, 70.0)
    rows = compare_dirs([tmp_path]).strip().splitlines()[2:]
    assert "| tiny (query: minilm) |" in rows[0] and "| tiny |" in rows[1]


def test_compare_errors(tmp_path):
    with pytest.raises(ValueError, match="at least one run"):
        compare_table([])
    with pytest.raises(FileNotFoundError, match="not found"):
        compare_dirs([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no results.json"):
        compare_dirs([tmp_path / "empty"])
