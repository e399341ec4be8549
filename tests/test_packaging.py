"""Import costs, optional extras and package metadata."""

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

import cl_prompts
from cl_prompts.extras import EXTRAS, require

ROOT = Path(__file__).resolve().parents[1]


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}; import sys; print(sorted(m for m in ('torch', 'transformers', 'avalanche', 'faiss') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own printed list


def test_import_cl_prompts_loads_none_of_the_heavy_packages():
    assert _loaded_after("import cl_prompts") == []


def test_cli_help_and_version_answer_without_torch():
    assert _loaded_after("from cl_prompts.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass") == []
    out = subprocess.run([sys.executable, "-m", "cl_prompts.cli", "--version"], capture_output=True, text=True)
    assert out.stdout.strip() == f"cl-prompts {cl_prompts.__version__}"


def test_the_run_config_loads_without_torch():
    assert _loaded_after("from cl_prompts.run.config import RunConfig; RunConfig(method='ranpac')") == []
    assert _loaded_after("from cl_prompts.run import RunConfig; RunConfig()") == []


def test_a_missing_extra_is_named_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'cl_prompts\[faiss\]'"):
        require("faiss", "a faiss index")
    from cl_prompts.index.key_index import KeyIndex

    with pytest.raises(ImportError, match=r"cl_prompts\[faiss\]"):
        KeyIndex(8, "HNSW32").add(__import__("torch").randn(4, 8), __import__("torch").arange(4))


def test_every_optional_module_has_an_extra_in_the_metadata():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extras = {k for k in cfg["options.extras_require"]}
    assert set(EXTRAS.values()) <= extras
    core = cfg["options"]["install_requires"]
    assert "avalanche" not in core and "faiss" not in core and "<=" not in core  # no build-machine caps
    assert (ROOT / "LICENSE").is_file() and (ROOT / "cl_prompts" / "py.typed").is_file()
    assert cfg["metadata"]["version"] == "attr: cl_prompts.__version__"
