"""mkdocs hooks (mkdocs.yml ``hooks:``): links from docs/ to files of the repository outside it.

Pages link to files beside docs/, such as ``../CHANGELOG.md`` or ``../benchmarks/README.md``.
mkdocs sees only docs/, so it reports such a link exactly as it reports a broken one ("the
target is not found among documentation files", or "an unrecognized relative link" for a
folder), and ``mkdocs build --strict`` would fail on it. This hook drops that warning when
the target is outside docs/, inside the repository, and exists there; a link to a missing
file, outside docs/ or inside it, keeps its warning and fails the strict build. An anchor
in a link to a file outside docs/ is not checked.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

_PAGES_LOGGER = "mkdocs.structure.pages"
_LINK_WARNING = re.compile(
    r"Doc file '(?P<page>[^']+)' contains (?:a|an unrecognized relative) link '(?P<url>[^']+)'"
)
log = logging.getLogger("mkdocs.hooks.outside_docs_links")


def outside_target(docs_dir: Path, page: str, url: str) -> Path | None:
    """The file or folder that ``url`` on ``page`` names, when it lies outside ``docs_dir``
    but inside the repository (``docs_dir``'s parent); ``None`` otherwise."""
    path = unquote(urlsplit(url).path)
    if not path or path.startswith("/"):
        return None
    docs_dir = Path(os.path.normpath(docs_dir))
    target = Path(os.path.normpath(docs_dir / Path(page).parent / path))
    if target.is_relative_to(docs_dir) or not target.is_relative_to(docs_dir.parent):
        return None
    return target


class OutsideDocsLinks(logging.Filter):
    """Drops mkdocs' warning about a link whose target exists outside docs/ in the repository."""

    def __init__(self, docs_dir: str | Path) -> None:
        super().__init__()
        self.docs_dir = Path(docs_dir)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        match = _LINK_WARNING.match(record.getMessage())
        if match is None:
            return True
        target = outside_target(self.docs_dir, match["page"], match["url"])
        if target is None or not target.exists():
            return True  # inside docs/, outside the repository, or missing: keep the warning
        log.debug("%s: link %r to %s, outside docs/", match["page"], match["url"], target)
        return False


def on_config(config):
    pages_log = logging.getLogger(_PAGES_LOGGER)
    for old in [f for f in pages_log.filters if isinstance(f, OutsideDocsLinks)]:
        pages_log.removeFilter(old)  # `mkdocs serve` loads the config again on each rebuild
    pages_log.addFilter(OutsideDocsLinks(config.docs_dir))
    return config
