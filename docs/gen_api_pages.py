"""The API reference pages, written by mkdocs-gen-files at build time (see mkdocs.yml).

Walks ``cl_prompts/`` and writes one page per public module, ``reference/<dotted/path>.md``
(a package's page is ``reference/<package>/index.md``), each holding ``::: <module>`` for
mkdocstrings, plus ``reference/SUMMARY.md``, the section's navigation for mkdocs-literate-nav.
Modules and packages whose name starts with ``_`` (other than ``__init__``) are left out,
and so is everything below them. Nothing is imported: mkdocstrings reads the source.
"""

from __future__ import annotations

from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "cl_prompts"


def public_modules(root: Path = ROOT, package: str = PACKAGE) -> list[tuple[str, ...]]:
    """The dotted paths, as tuples of parts, of every public module and package, sorted."""
    modules = []
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue  # private, or below a private package (and __main__)
        if path.name != "__init__.py" and not (path.parent / "__init__.py").is_file():
            continue  # a script in a folder that is not a package
        modules.append(parts)
    return modules


def page_of(parts: tuple[str, ...], root: Path = ROOT) -> Path:
    """The page of a module, relative to the reference section."""
    if (root.joinpath(*parts) / "__init__.py").is_file():
        return Path(*parts, "index.md")
    if parts[-1] == "index":
        raise ValueError(f"module {'.'.join(parts)} would take its package's page")
    return Path(*parts).with_suffix(".md")


def main() -> None:
    nav = mkdocs_gen_files.Nav()
    for parts in public_modules():
        page = page_of(parts)
        nav[parts] = page.as_posix()
        with mkdocs_gen_files.open(Path("reference", page), "w") as out:
            out.write(f"::: {'.'.join(parts)}\n")
        # the "edit" link of the page points at the module's source
        source = Path(*parts, "__init__.py") if page.name == "index.md" else Path(*parts).with_suffix(".py")
        mkdocs_gen_files.set_edit_path(Path("reference", page), Path("..", source))
    with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as summary:
        summary.writelines(nav.build_literate_nav())


if __name__ in {"__main__", "<run_path>"}:  # mkdocs-gen-files runs it with runpy.run_path
    main()
