"""benchmarks/provenance.py: the command, machine, versions and commit every benchmark JSON records."""

import json
import math

import pytest

from cl_prompts.results.record import versions


@pytest.fixture(scope="module")
def prov(benchmark_script):
    return benchmark_script("provenance")


def test_provenance_records_the_command_machine_versions_and_commit(prov):
    doc = prov.provenance("bench_train", ["--tiny", "--out", "x.json"])
    assert set(doc) == {"command", "machine", "versions", "commit"}
    assert doc["command"] == "python benchmarks/bench_train.py --tiny --out x.json"
    assert prov.provenance("tune.py", [])["command"] == "python benchmarks/tune.py"
    assert doc["versions"] == versions()
    assert doc["commit"] == doc["versions"]["cl_prompts_commit"]
    machine = doc["machine"]
    assert {"cpu", "cpu_count", "torch_threads", "platform"} <= set(machine) and "gpu" not in machine
    assert machine["cpu"] and machine["cpu_count"] >= 1 and machine["torch_threads"] >= 1
    json.dumps(doc, allow_nan=False)  # plain JSON


def test_provenance_without_argv_records_this_process_arguments(prov, monkeypatch):
    monkeypatch.setattr("sys.argv", ["benchmarks/headline.py", "--seeds", "0"])
    assert prov.provenance("headline", None)["command"] == "python benchmarks/headline.py --seeds 0"


def test_write_json_creates_folders_and_refuses_nan(prov, tmp_path):
    path = tmp_path / "a" / "b" / "doc.json"
    doc = {"rows": [{"x": 1.5, "y": None}], "name": "é"}
    assert prov.write_json(path, doc) == path
    assert json.loads(path.read_text(encoding="utf-8")) == doc
    assert path.read_text().endswith("}\n") and "\n " in path.read_text()  # indented
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError):
            prov.write_json(path, {"x": bad})
    assert json.loads(path.read_text(encoding="utf-8")) == doc  # the earlier file is left whole
    assert [p.name for p in path.parent.iterdir()] == ["doc.json"]  # no temp file left behind
