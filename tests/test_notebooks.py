"""notebooks/: clean, valid, parameterised, and each one executed with small settings.

Every notebook runs twice: in the default suite on the tiny random backbone, its cells
executed in this process (seconds: every cell must run against today's library, and what
does not depend on the model's quality is checked); marked slow, on MiniLM in a fresh Jupyter
kernel (nbclient), where the accuracies are checked too. One tiny run also goes through a
kernel, so the default suite covers notebooks/execute.py.

The runs inject their small settings after the notebook's ``parameters`` cell
(notebooks/execute.py, as papermill does), then a probe cell prints the values checked here.
"""

import json
import sys
import warnings
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
# growing_pool's 10,000 random features cost two 10,000-wide solves per experience (about
# 25 s on one CPU thread); the executed notebooks run it with fewer, as a user in a hurry would
SMALL = {"projection_dim": 2000}
# what the method tests use on the width-32 tiny backbone (tests/methods/conftest.py)
TINY = {"projection_dim": 64, "ridge": 1.0, "prompted_ridge": 1.0}
# "tiny": in this process on the tiny backbone; "minilm": the real model in a Jupyter kernel
BACKBONES = ["tiny", pytest.param("minilm", marks=pytest.mark.slow)]
TINY_KERNEL_CELL = ("import cl_prompts.backbones as _backbones, cl_prompts.backbones.loading as _loading\n"
                    "from cl_prompts.backbones.testing import tiny_text_backbone as _tiny\n"
                    "_backbones.default_backbone = _loading.default_backbone = _tiny")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def test_the_numbered_notebooks_exist():
    assert [p.name for p in PATHS] == ["01_quickstart.ipynb", "02_avalanche_forgetting.ipynb",
                                       "03_inside_the_prompts.ipynb", "04_multitask_recycling.ipynb",
                                       "05_your_own_intents.ipynb", "06_llm_prompts.ipynb"]


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


def _notebook_module():
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import execute  # notebooks/execute.py
    finally:
        sys.path.remove(str(NOTEBOOKS))
    return execute


def _in_kernel(path: Path, overrides: dict, probe: str, tmp_path: Path, first_cell: str | None = None) -> dict:
    """Execute a copy of the notebook in a fresh python3 kernel (nbclient); the probe's value."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    import nbformat

    execute = _notebook_module().execute
    nb = nbformat.read(path, as_version=4)
    probe_cell = nbformat.v4.new_code_cell("import json as _json\nprint(_json.dumps(" + probe + "))")
    probe_cell["id"] = "probe"
    nb.cells.append(probe_cell)
    if first_cell is not None:
        cell = nbformat.v4.new_code_cell(first_cell)
        cell["id"] = "first"
        nb.cells.insert(0, cell)
    copy = tmp_path / path.name
    nbformat.write(nb, copy)
    executed, _ = execute(copy, overrides, cwd=tmp_path)
    out = [o for o in executed.cells[-1]["outputs"] if o.get("name") == "stdout"]
    return json.loads(out[-1]["text"].strip().splitlines()[-1])


def _in_process(path: Path, overrides: dict, probe: str, tmp_path: Path, monkeypatch) -> dict:
    """Execute the notebook's code cells in order in this process, with ``default_backbone()``
    giving the tiny random backbone; the probe's value, through JSON as from a kernel."""
    import matplotlib
    import matplotlib.pyplot as plt
    import nbformat

    import cl_prompts.backbones
    import cl_prompts.backbones.loading
    from cl_prompts.backbones.testing import tiny_text_backbone

    assert matplotlib.get_backend().lower() == "agg", "plt.show() must not open windows"
    for module in (cl_prompts.backbones, cl_prompts.backbones.loading):
        monkeypatch.setattr(module, "default_backbone", tiny_text_backbone)
    monkeypatch.chdir(tmp_path)  # the notebooks write their run folders under the working folder
    nb = _notebook_module().with_parameters(nbformat.read(path, as_version=4), overrides)
    namespace: dict = {"__name__": "__main__"}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*non-interactive.*cannot be shown")
            for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
                exec(compile(cell.source, f"{path.name}[code cell {i}]", "exec"), namespace)
        return json.loads(json.dumps(eval(probe, namespace)))
    finally:
        plt.close("all")


def _run(path: Path, overrides: dict, probe: str, tmp_path: Path, backbone: str, monkeypatch,
         options: str = "METHOD_OPTIONS") -> dict:
    """The probe's value after a run on ``backbone`` ("tiny" or "minilm"); ``options`` names the
    notebook's parameter of method options."""
    if backbone == "tiny":
        return _in_process(path, {**overrides, options: TINY}, probe, tmp_path, monkeypatch)
    return _in_kernel(path, {**overrides, options: SMALL}, probe, tmp_path)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_quickstart_runs_and_finds_the_domains(tmp_path, monkeypatch, backbone):
    probe = ('{"acc": np.nan_to_num(acc, nan=-1).tolist(), "final": summary["final_average_accuracy"], '
             '"task_acc": task_acc.tolist(), "picked": domains[picked_task], "domains": domains[:3], '
             '"predicted": data.class_names[predicted], "current": method.current_experience, '
             '"trained": [data.class_names[c] for e in data.experiences[:3] for c in e]}')
    got = _run(NOTEBOOKS / "01_quickstart.ipynb", {"QUICK": True}, probe, tmp_path, backbone, monkeypatch)
    lower = [got["acc"][i][j] for i in range(3) for j in range(i + 1)]
    assert [got["acc"][i][j] for i in range(3) for j in range(i + 1, 3)] == [-1, -1, -1]  # not trained yet
    assert min(lower) >= 0.0 and max(lower) <= 100.0 and 0.0 <= got["final"] <= 100.0, got["acc"]
    assert len(got["task_acc"]) == 3 and all(0.0 <= a <= 100.0 for a in got["task_acc"])
    assert got["picked"] in got["domains"] and got["predicted"] in got["trained"]
    assert got["current"] == 2
    if backbone == "minilm":
        # chance is 1/15 among one domain's intents and 1/45 over three domains; MiniLM + one
        # epoch on 10 sentences per intent reaches ~75-87% on every domain (seed 0)
        assert min(lower) > 50.0, got["acc"]
        assert got["final"] > 60.0 and min(got["task_acc"]) > 85.0, got
        assert got["picked"] == "credit_cards" and got["predicted"] == "card_declined"


@pytest.mark.parametrize("backbone", BACKBONES)
def test_forgetting_notebook_shows_fine_tuning_forget_and_the_prompt_method_keep(tmp_path, monkeypatch, backbone):
    probe = '{name: summarize(acc) for name, acc in accuracy.items()}'
    got = _run(NOTEBOOKS / "02_avalanche_forgetting.ipynb", {"QUICK": True, "EXPERIENCES": 3}, probe, tmp_path,
               backbone, monkeypatch, options="PROMPT_OPTIONS")
    assert set(got) == {"finetune", "growing_pool"}
    for summary in got.values():
        assert 0.0 <= summary["final_average_accuracy"] <= 100.0 and summary["average_forgetting"] <= 100.0
    if backbone == "minilm":
        tuned, prompted = got["finetune"], got["growing_pool"]
        assert prompted["final_average_accuracy"] > tuned["final_average_accuracy"] + 20, got
        assert tuned["average_forgetting"] > prompted["average_forgetting"] + 20, got


@pytest.mark.parametrize("backbone", BACKBONES)
def test_recycling_notebook_compares_the_three_starts(tmp_path, monkeypatch, backbone):
    probe = '{"few": few_shot_accuracy, "avg": average_accuracy, "best": best}'
    got = _run(NOTEBOOKS / "04_multitask_recycling.ipynb", {"QUICK": True, "SEEDS": [0], "EXPERIENCES": 2},
               probe, tmp_path, backbone, monkeypatch)
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


@pytest.mark.parametrize("backbone", BACKBONES)
def test_inside_the_prompts_runs_every_analysis(tmp_path, monkeypatch, backbone):
    probe = ('{"final": results["final_average_accuracy"], "tid": tid["accuracy"], '
             '"usage": usage["share"].sum(axis=1).tolist(), "tables": len(tables), '
             '"keys": list(kmap["keys"].shape), "domains": domains}')
    got = _run(NOTEBOOKS / "03_inside_the_prompts.ipynb", {"QUICK": True, "EXPERIENCES": 3}, probe, tmp_path,
               backbone, monkeypatch)
    assert got["domains"] == ["banking", "credit_cards", "kitchen_and_dining"]
    assert 0.0 <= got["final"] <= 100.0 and 0.0 <= got["tid"] <= 1.0, got
    assert got["usage"] == pytest.approx([2.0, 2.0, 2.0])  # 2 candidate domains per sentence (of 3)
    assert got["tables"] == 3 and got["keys"] == [45, 2]  # one prompt per domain, one key per intent
    assert (tmp_path / "runs" / "03_inside_the_prompts" / "results.json").is_file()
    if backbone == "minilm":
        assert got["final"] > 60.0 and got["tid"] > 0.85, got


PROBE_05 = ('{"final": results["final_average_accuracy"], "labels": [p.labels[0] for p in predictions], '
            '"oos": [p.out_of_scope for p in predictions], "experience": [p.experience for p in predictions], '
            '"intents": data.class_names}')


def _check_your_own_intents(got: dict, tmp_path: Path) -> None:
    assert 0.0 <= got["final"] <= 100.0, got
    assert len(got["labels"]) == 4 and set(got["labels"]) <= set(got["intents"]), got
    assert all(isinstance(flag, bool) for flag in got["oos"]), got
    assert all(0 <= e < 3 for e in got["experience"])
    assert (tmp_path / "my_intents.csv").is_file()


@pytest.mark.parametrize("backbone", BACKBONES)
def test_your_own_intents_predicts_and_flags_out_of_scope(tmp_path, monkeypatch, backbone):
    got = _run(NOTEBOOKS / "05_your_own_intents.ipynb", {"PER_INTENT": 10}, PROBE_05, tmp_path, backbone, monkeypatch)
    _check_your_own_intents(got, tmp_path)
    if backbone == "minilm":
        assert got["final"] > 60.0, got
        assert got["labels"][0] == "alarm_set" and got["labels"][2] == "weather_query", got
        assert got["oos"][0] is False, got


def test_a_notebook_runs_in_a_jupyter_kernel_with_injected_parameters(tmp_path):
    """The kernel path of the slow runs (notebooks/execute.py), on the tiny backbone."""
    got = _in_kernel(NOTEBOOKS / "05_your_own_intents.ipynb", {"PER_INTENT": 10, "METHOD_OPTIONS": TINY},
                     PROBE_05, tmp_path, first_cell=TINY_KERNEL_CELL)
    _check_your_own_intents(got, tmp_path)
    results = json.loads((tmp_path / "runs" / "05_your_own_intents" / "results.json").read_text())
    assert results["config"]["method_options"] == TINY  # the injected cell came after the parameters


@pytest.mark.parametrize("backbone", ["tiny-llama", pytest.param("smollm2", marks=pytest.mark.slow)])
def test_llm_notebook_trains_both_learners_and_decodes_under_each_prompt(tmp_path, monkeypatch, backbone):
    probe = ('{"domains": domains, "said": said, "unprompted": unprompted, "tables": len(tables), '
             '"summary": summary, "answers": pool.answer_texts[:2]}')
    overrides = {"BACKBONE": backbone, "EXPERIENCES": 2, "TRAIN_PER_CLASS": 2, "TEST_PER_CLASS": 1, "EPOCHS": 1}
    path = NOTEBOOKS / "06_llm_prompts.ipynb"
    if backbone == "tiny-llama":
        got = _in_process(path, {**overrides, "PROMPT_LENGTH": 2, "POOL_OPTIONS": {"projection_dim": 64}},
                          probe, tmp_path, monkeypatch)
    else:
        got = _in_kernel(path, {**overrides, "TRAIN_PER_CLASS": 5, "TEST_PER_CLASS": 2}, probe, tmp_path)
    assert got["domains"] == ["banking", "credit_cards"]
    assert set(got["said"]) == set(got["domains"]) and all(len(v) == 2 for v in got["said"].values())
    assert len(got["unprompted"]) == 2 and got["tables"] == 2  # one prompt per domain
    assert got["answers"] == ["freeze account", "routing"]  # readable intent names
    assert set(got["summary"]) == {"prompt_tuning", "growing_pool"}
    for summary in got["summary"].values():
        assert 0.0 <= summary["final_average_accuracy"] <= 100.0
