"""`make docs`: the manual and the API reference build with `mkdocs build --strict`."""

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NEEDED = ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_autorefs",
          "mkdocs_gen_files", "mkdocs_literate_nav")


@pytest.fixture(scope="module", autouse=True)
def _mkdocs_installed():
    missing = [name for name in NEEDED if importlib.util.find_spec(name.split(".")[0]) is None
               or importlib.util.find_spec(name) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: install the docs extra, "
                    f"pip install -e '.[docs]' (the dev extra and `make test` include it)")


def _mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true"}  # properdocs' banner on stderr
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
         "--site-dir", str(site)],
        cwd=config.parent, capture_output=True, text=True, env=env, timeout=300)


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    out = _mkdocs_build(ROOT / "mkdocs.yml", site)
    assert out.returncode == 0, f"mkdocs build --strict failed:\n{out.stderr}"
    return site


def _text(page: Path) -> str:
    return re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))


def test_the_api_reference_has_a_page_per_public_module(site):
    for module in ("cl_prompts/pool", "cl_prompts/methods/registry", "cl_prompts/cli",
                   "cl_prompts/pool/pool", "cl_prompts/methods/l2p/model"):
        assert (site / "reference" / module / "index.html").is_file(), module
    assert "PromptPool" in _text(site / "reference/cl_prompts/pool/index.html")
    assert "select" in _text(site / "reference/cl_prompts/pool/pool/index.html")
    assert "build_model" in _text(site / "reference/cl_prompts/methods/registry/index.html")

    gen = _module("gen_api_pages", DOCS / "gen_api_pages.py")
    modules = gen.public_modules()
    assert ("cl_prompts",) in modules and ("cl_prompts", "lazy") in modules
    assert not any(part.startswith("_") for parts in modules for part in parts)
    for parts in modules:
        assert (site / "reference" / Path(*parts) / "index.html").is_file(), ".".join(parts)


def test_the_manual_pages_are_in_the_site_in_the_order_of_docs_readme(site):
    # docs/README.md is the index; mkdocs.yml's nav lists its pages in its order
    listed = re.findall(r"\]\(([a-z_]+\.md)\)", (DOCS / "README.md").read_text(encoding="utf-8"))
    listed = list(dict.fromkeys(listed))

    def pages(nav):
        for item in nav:
            for value in item.values():
                if isinstance(value, list):
                    yield from pages(value)
                elif value.endswith(".md"):
                    yield value

    import yaml  # comes with mkdocs

    nav = list(pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]))
    assert nav == ["README.md", *listed]
    assert sorted(nav) == sorted(p.name for p in DOCS.glob("*.md"))
    for page in listed:
        assert (site / page.removesuffix(".md") / "index.html").is_file(), page
    assert "getting started" in _text(site / "index.html")


def test_links_outside_docs_pass_only_when_their_target_exists(tmp_path):
    # a small site with the project's hook: a link to a file or folder beside docs/ is fine
    # when it exists; a missing one, beside docs/ or in it, and a missing anchor fail --strict
    (tmp_path / "docs").mkdir()
    (tmp_path / "CHANGELOG.md").write_text("# Changes\n")
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "mkdocs.yml").write_text(textwrap.dedent(f"""\
        site_name: t
        hooks: [{(DOCS / 'mkdocs_hooks.py').as_posix()}]
        validation: {{omitted_files: warn, absolute_links: warn, unrecognized_links: warn,
                      anchors: warn, not_found: warn}}
        """))
    (tmp_path / "docs/other.md").write_text("# Other\n\n## A section\n")
    good = "[a](../CHANGELOG.md) [b](../benchmarks/) [c](other.md#a-section)\n"
    (tmp_path / "docs/index.md").write_text(f"# Index\n\n{good}")
    out = _mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert out.returncode == 0, out.stderr
    assert "WARNING" not in out.stderr, out.stderr

    bad = "[d](../MISSING.md) [e](../missing/) [f](missing.md) [g](other.md#no-such-section)\n"
    (tmp_path / "docs/index.md").write_text(f"# Index\n\n{good}{bad}")
    out = _mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert out.returncode != 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 4, out.stderr
    for link in ("'../MISSING.md'", "'../missing/'", "'missing.md'", "'#no-such-section'"):
        assert any(link in line for line in warnings), (link, out.stderr)


def test_the_outside_link_check(tmp_path):
    hooks = _module("mkdocs_hooks", DOCS / "mkdocs_hooks.py")
    docs = tmp_path / "docs"
    assert hooks.outside_target(docs, "a/b.md", "../../x.md#y") == tmp_path / "x.md"
    assert hooks.outside_target(docs, "b.md", "other.md") is None  # inside docs/
    assert hooks.outside_target(docs, "b.md", "../../x.md") is None  # outside the repository
    assert hooks.outside_target(docs, "b.md", "/x.md") is None
