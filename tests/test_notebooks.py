"""notebooks/: clean, valid, parameterised, and each one executed (nbclient) with small settings.

The executed runs inject their small settings after the notebook's ``parameters`` cell
(notebooks/execute.py, as papermill does), then a probe cell prints the values checked here.
"""

import json
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
# growing_pool's 10,000 random features cost two 10,000-wide solves per experience (about
# 25 s on one CPU thread); the executed notebooks run it with fewer, as a user in a hurry would
SMALL = {"projection_dim": 2000}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def test_the_numbered_notebooks_exist():
    assert [p.name for p in PATHS] == ["01_quickstart.ipynb", "02_avalanche_forgetting.ipynb",
                                       "03_inside_the_prompts.ipynb", "04_multitask_recycling.ipynb",
                                       "05_your_own_intents.ipynb"]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_notebook_is_valid_clean_and_parameterised(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and isinstance(nb["nbformat_minor"], int)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    cells = nb["cells"]
    ids = [c["id"] for c in cells if "id" in c]
    assert len(ids) == len(cells) == len(set(ids)), "cell ids must be present and unique"
    code = [c for c in cells if c["cell_type"] == "code"]
    for i, cell in enumerate(code):
        # stored outputs make diffs noisy and can go stale: the notebook is committed clean
        assert cell["outputs"] == [] and cell["execution_count"] is None, f"code cell {i} has outputs"
        compile(_source(cell), f"{path.name}[code cell {i}]", "exec")  # SyntaxError fails the test
    first = code[0]
    assert first["metadata"].get("tags") == ["parameters"], "the first code cell holds the parameters"
    params: dict = {}
    exec(compile(_source(first), "parameters", "exec"), params)  # plain assignments, no imports
    assert all(not k.startswith("_") for k in params if k != "__builtins__")
    imports = [line for c in code for line in _source(c).splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in imports if "notebooks" in line or "tests" in line]  # the library only


def _run(path: Path, overrides: dict, probe: str, tmp_path: Path) -> dict:
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        from execute import execute, with_parameters  # noqa: F401 - notebooks/execute.py
    finally:
        sys.path.remove(str(NOTEBOOKS))
    import nbformat

    nb = nbformat.read(path, as_version=4)
    probe_cell = nbformat.v4.new_code_cell("import json as _json\nprint(_json.dumps(" + probe + "))")
    probe_cell["id"] = "probe"
    nb.cells.append(probe_cell)
    copy = tmp_path / path.name
    nbformat.write(nb, copy)
    executed, _ = execute(copy, overrides, cwd=tmp_path)
    out = [o for o in executed.cells[-1]["outputs"] if o.get("name") == "stdout"]
    return json.loads(out[-1]["text"].strip().splitlines()[-1])


def test_quickstart_runs_and_finds_the_domains(tmp_path):
    probe = ('{"acc": np.nan_to_num(acc, nan=-1).tolist(), "final": summary["final_average_accuracy"], '
             '"task_acc": task_acc.tolist(), "picked": domains[picked_task], '
             '"predicted": data.class_names[predicted], "current": method.current_experience}')
    got = _run(NOTEBOOKS / "01_quickstart.ipynb", {"QUICK": True, "METHOD_OPTIONS": SMALL}, probe, tmp_path)
    lower = [got["acc"][i][j] for i in range(3) for j in range(i + 1)]
    # chance is 1/15 among one domain's intents and 1/45 over three domains; MiniLM + one
    # epoch on 10 sentences per intent reaches ~75-87% on every domain (seed 0)
    assert min(lower) > 50.0 and max(lower) <= 100.0, got["acc"]
    assert got["final"] > 60.0 and min(got["task_acc"]) > 85.0, got
    assert got["picked"] == "credit_cards" and got["predicted"] == "card_declined"
    assert got["current"] == 2


def test_forgetting_notebook_shows_fine_tuning_forget_and_the_prompt_method_keep(tmp_path):
    probe = '{name: summarize(acc) for name, acc in accuracy.items()}'
    got = _run(NOTEBOOKS / "02_avalanche_forgetting.ipynb", {"QUICK": True, "EXPERIENCES": 3, "PROMPT_OPTIONS": SMALL},
               probe, tmp_path)
    tuned, prompted = got["finetune"], got["growing_pool"]
    assert prompted["final_average_accuracy"] > tuned["final_average_accuracy"] + 20, got
    assert tuned["average_forgetting"] > prompted["average_forgetting"] + 20, got


def test_recycling_notebook_compares_the_three_starts(tmp_path):
    probe = '{"few": few_shot_accuracy, "avg": average_accuracy, "best": best}'
    got = _run(NOTEBOOKS / "04_multitask_recycling.ipynb", {"QUICK": True, "SEEDS": [0], "EXPERIENCES": 2, "METHOD_OPTIONS": SMALL}, probe, tmp_path)
    assert set(got["few"]) == {"random", "previous task", "nearest task"} and got["best"] in got["few"]
    for values in (*got["few"].values(), *got["avg"].values()):
        assert len(values) == 1 and 0.0 <= values[0] <= 100.0
    runs = sorted(p.name for p in (tmp_path / "runs" / "04_recycling").iterdir())
    assert runs == ["nearest_task-seed0", "previous_task-seed0", "random-seed0"]
    for run in runs:
        results = json.loads((tmp_path / "runs" / "04_recycling" / run / "results.json").read_text())
        expected = {"random": {"init_from_previous": False}, "nearest_task": {"init_from_nearest": True}}
        for key, value in expected.get(run.rsplit("-", 1)[0], {}).items():
            assert results["method_config"][key] == value


def test_inside_the_prompts_runs_every_analysis(tmp_path):
    probe = ('{"final": results["final_average_accuracy"], "tid": tid["accuracy"], '
             '"usage": usage["share"].sum(axis=1).tolist(), "tables": len(tables), '
             '"keys": list(kmap["keys"].shape), "domains": domains}')
    got = _run(NOTEBOOKS / "03_inside_the_prompts.ipynb", {"QUICK": True, "EXPERIENCES": 3, "METHOD_OPTIONS": SMALL}, probe, tmp_path)
    assert got["domains"] == ["banking", "credit_cards", "kitchen_and_dining"]
    assert got["final"] > 60.0 and got["tid"] > 0.85, got
    assert got["usage"] == pytest.approx([2.0, 2.0, 2.0])  # 2 candidate domains per sentence (of 3)
    assert got["tables"] == 3 and got["keys"] == [45, 2]  # one prompt per domain, one key per intent
    assert (tmp_path / "runs" / "03_inside_the_prompts" / "results.json").is_file()


def test_your_own_intents_predicts_and_flags_out_of_scope(tmp_path):
    probe = ('{"final": results["final_average_accuracy"], "labels": [p.labels[0] for p in predictions], '
             '"oos": [p.out_of_scope for p in predictions], "experience": [p.experience for p in predictions]}')
    got = _run(NOTEBOOKS / "05_your_own_intents.ipynb", {"PER_INTENT": 10, "METHOD_OPTIONS": SMALL}, probe, tmp_path)
    assert got["final"] > 60.0, got
    assert got["labels"][0] == "alarm_set" and got["labels"][2] == "weather_query", got
    assert all(isinstance(flag, bool) for flag in got["oos"]) and got["oos"][0] is False, got
    assert all(0 <= e < 3 for e in got["experience"])
    assert (tmp_path / "my_intents.csv").is_file()
