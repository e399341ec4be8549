"""Random edits of a run folder's method.json, calibration.json, state.json and LATEST (with and
without the manifest recomputed, as an attacker would): ``cl-prompts predict`` and ``run --resume``
either work or exit 2 with one line, never a traceback; nothing outside the folder is written;
each try takes a bounded time."""

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import cl_prompts.run.checkpoints as ckpt  # noqa: E402
from cl_prompts.cli import main  # noqa: E402
from cl_prompts.data import synthetic_text_dataset, write_text_csv  # noqa: E402

SECONDS_PER_TRY = 10

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A finished ncm run (its results.json removed, so that a resume has work to do) and its CSV."""
    root = tmp_path_factory.mktemp("fuzz")
    ds = synthetic_text_dataset(num_classes=4, num_experiences=2, train_per_class=6, test_per_class=2)
    data = write_text_csv(root / "toy.csv", [ds.train, ds.test], ds.class_names)
    out = root / "run"
    assert main(["run", "--benchmark", f"file:{data}", "--backbone", "tiny-bert", "--method", "ncm",
                 "--experiences", "2", "--out", str(out), "--no-progress", "--no-plots"]) == 0
    (out / "results.json").unlink()
    (out / "calibration.json").write_text(json.dumps({
        "score": "max_logit", "threshold": 0.5, "false_rejection": 0.05, "temperature": 2.0, "source": "x",
        "similarity_weight": 1.0, "standardise": None}))
    return out


def _paths(doc, prefix=()):
    """Every (container, key) path of a JSON document, depth first."""
    out = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


def _mutate(text: str, action: str, pick: int, value, cut: int) -> str:
    if action == "truncate":
        return text[: cut % (len(text) + 1)]
    if action == "deep":
        return "[" * 50_000 + "]" * 50_000
    doc = json.loads(text)
    paths = _paths(doc)
    if action == "whole" or not paths:
        return json.dumps(value)
    *parent_keys, key = paths[pick % len(paths)]
    parent = doc
    for k in parent_keys:
        parent = parent[k]
    if action == "delete":
        del parent[key]
    elif action == "wrap":
        parent[key] = [parent[key]]
    else:
        parent[key] = value
    return json.dumps(doc)


def _rehash(run: Path) -> None:
    folder = ckpt.checkpoint_root(run) / json.loads((ckpt.checkpoint_root(run) / ckpt.LATEST).read_text())["dir"]
    files = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": ckpt._sha256(p)}
             for p in ckpt._files(folder)}
    (folder / ckpt.MANIFEST).write_text(json.dumps({"format_version": ckpt.FORMAT_VERSION, "files": files}))
    latest = ckpt.checkpoint_root(run) / ckpt.LATEST
    pointer = json.loads(latest.read_text())
    pointer["manifest_sha256"] = ckpt._sha256(folder / ckpt.MANIFEST)
    latest.write_text(json.dumps(pointer))


def _target(run: Path, name: str) -> Path:
    if name == "LATEST":
        return ckpt.checkpoint_root(run) / ckpt.LATEST
    if name == "calibration.json":
        return run / name
    folder = ckpt.checkpoint_root(run) / json.loads((ckpt.checkpoint_root(run) / ckpt.LATEST).read_text())["dir"]
    return folder / ("model/method.json" if name == "method.json" else name)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=st.sampled_from(["method.json", "calibration.json", "state.json", "LATEST"]),
       action=st.sampled_from(["replace", "replace", "delete", "wrap", "whole", "truncate", "deep"]),
       pick=st.integers(min_value=0, max_value=10_000), value=json_values,
       cut=st.integers(min_value=0, max_value=10_000), rehash=st.booleans())
def test_edited_run_folders_fail_in_one_line_and_write_nothing_outside(base, capsys, name, action, pick, value,
                                                                     cut, rehash):
    root = Path(tempfile.mkdtemp(prefix="cl-prompts-fuzz-"))
    try:
        outside = root / "home"
        outside.mkdir()
        (outside / "keep").write_text("mine")
        run = shutil.copytree(base, root / "run")
        target = _target(run, name)
        target.write_text(_mutate(target.read_text(), action, pick, value, cut))
        if rehash and name != "LATEST":
            _rehash(run)
        command = ["run", "--resume", str(run), "--no-progress"] if name in ("state.json", "LATEST") else \
            ["predict", str(run), "book a flight"]
        capsys.readouterr()
        start = time.perf_counter()
        code = main(command)
        elapsed = time.perf_counter() - start
        err = capsys.readouterr().err
        assert code in (0, 2), err
        if code == 2:
            assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("cl-prompts: error: "), err
        assert elapsed < SECONDS_PER_TRY, (command, elapsed)
        assert sorted(p.name for p in root.iterdir()) == ["home", "run"]
        assert [p.name for p in outside.iterdir()] == ["keep"] and (outside / "keep").read_text() == "mine"
    finally:
        shutil.rmtree(root)
