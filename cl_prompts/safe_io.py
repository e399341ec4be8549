"""Files and text that someone else made: run folders, model folders, configs, data files.

A shared folder may hold anything (docs/security.md): symlinks to the user's files, FIFOs,
``/dev/zero``, JSON nested a million deep, a list where an object belongs, NaN where a
number belongs. Every reader and every deletion of such a folder goes through here:

- :func:`read_bytes` / :func:`read_text` / :func:`read_json` open regular files only
  (a FIFO is opened without blocking and refused), with a size bound, and optionally
  refuse symlinks; JSON gets a nesting bound and a type check of its top level.
- :func:`inside` / :func:`join_inside` check that a path, symlinks resolved, stays in the
  folder it belongs to; :func:`remove_inside` deletes only there and never follows a link.
- :func:`printable` / :func:`markdown_cell` / :func:`csv_cell` make saved strings (class
  names, config values) safe to print in a terminal, a markdown table or a spreadsheet.

Errors are ``ValueError`` (``UnsafeFileError``), ``FileNotFoundError`` or
``IsADirectoryError`` naming the file and the problem: the CLI prints them on one line.
Standard library only.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
import unicodedata
from pathlib import Path
from typing import Any

MAX_JSON_BYTES = 64 << 20  # method.json, state.json, LATEST, calibration.json, results.json, configs
MAX_DATA_BYTES = 2 << 30  # a data file (CSV, JSON, text) read whole into memory
MAX_JSON_DEPTH = 64  # our files nest 5 deep at most

_JSON_TYPES = {dict: "a JSON object", list: "a JSON list", str: "a string", bool: "true or false",
               int: "an integer", float: "a number"}


class UnsafeFileError(ValueError):
    """A file or path refused because reading, following or deleting it could do harm."""


# --------------------------------------------------------------------------- paths
def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def inside(path: str | os.PathLike, root: str | os.PathLike, what: str) -> Path:
    """``path`` with its symlinks resolved; ``UnsafeFileError`` unless it lies in ``root`` (resolved)."""
    real_root, real = Path(root).resolve(), Path(path).resolve()
    if real != real_root and real_root not in real.parents:
        raise UnsafeFileError(f"{what} {path} points outside {root} (to {real}); refusing to follow it")
    return real


def join_inside(root: str | os.PathLike, relative: Any, what: str) -> Path:
    """``root / relative`` for a relative path read from a file in ``root``; refused if it leaves ``root``."""
    if not isinstance(relative, str):
        raise UnsafeFileError(f"{what} must be a relative path string, got {relative!r}")
    if os.path.isabs(relative):
        raise UnsafeFileError(f"{what} must be a path inside {root}, got the absolute path {relative!r}")
    path = Path(root) / relative
    inside(path, root, what)
    return path


def refuse_symlink(path: str | os.PathLike, what: str) -> None:
    """``UnsafeFileError`` when ``path`` itself is a symlink (its target is never touched)."""
    if os.path.islink(path):
        raise UnsafeFileError(f"{what} {path} is a symlink (to {os.readlink(path)}); refusing to follow it")


def remove_inside(path: str | os.PathLike, root: str | os.PathLike) -> None:
    """Delete file or folder ``path``, which must lie in ``root``; a symlink is unlinked, never followed."""
    path = Path(path)
    if path.is_symlink():
        path.unlink()  # removes the link alone; its target stays
        return
    if not path.exists():
        return
    inside(path, root, "path to delete")
    if path.is_dir():
        shutil.rmtree(path)  # does not follow the symlinks it meets inside the tree
    else:
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- reading
def open_regular(path: str | os.PathLike, what: str, max_bytes: int, *, follow_symlinks: bool = True) -> int:
    """An fd of regular file ``path`` of at most ``max_bytes``; FIFOs and devices refused without blocking."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            refuse_symlink(path, what)
        raise OSError(exc.errno, f"{what} {path} cannot be read ({exc.strerror})") from None
    try:
        mode, size = os.fstat(fd).st_mode, os.fstat(fd).st_size
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{what} must be a file, got the directory {path}")
        if not stat.S_ISREG(mode):
            raise UnsafeFileError(f"{what} {path} is {_kind(mode)}, not a regular file; refusing to read it")
        if size > max_bytes:
            raise UnsafeFileError(f"{what} {path} holds {size} bytes, more than the {max_bytes} allowed")
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def check_regular(path: str | os.PathLike, what: str, max_bytes: int = MAX_DATA_BYTES, *,
                  follow_symlinks: bool = True) -> Path:
    """``path`` if it is a regular file of at most ``max_bytes`` (for files handed to a library)."""
    os.close(open_regular(path, what, max_bytes, follow_symlinks=follow_symlinks))
    return Path(path)


def read_bytes(path: str | os.PathLike, what: str, max_bytes: int = MAX_DATA_BYTES, *,
               follow_symlinks: bool = True) -> bytes:
    """The bytes of regular file ``path``, at most ``max_bytes`` (a file growing while read is refused)."""
    with os.fdopen(open_regular(path, what, max_bytes, follow_symlinks=follow_symlinks), "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnsafeFileError(f"{what} {path} holds more than the {max_bytes} bytes allowed")
    return data


def read_text(path: str | os.PathLike, what: str, max_bytes: int = MAX_DATA_BYTES, *,
              follow_symlinks: bool = True) -> str:
    """UTF-8 text (a byte-order mark is dropped) of regular file ``path``."""
    data = read_bytes(path, what, max_bytes, follow_symlinks=follow_symlinks)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None


# --------------------------------------------------------------------------- JSON
def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar: 0), without recursion."""
    depth, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            depth = max(depth, level)
            stack.extend((v, level + 1) for v in item if isinstance(v, (dict, list)))
    return depth


def parse_json(text: str, what: str, *, expect: type | None = dict, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON ``text``; refuse invalid or deeply nested JSON, and a top level not of type ``expect``."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply to be ours; refusing it") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if json_depth(value) > max_depth:
        raise ValueError(f"{what} nests more than {max_depth} levels deep; refusing it")
    if expect is not None:
        require(value, expect, what)
    return value


def read_json(path: str | os.PathLike, what: str, *, expect: type | None = dict,
              max_bytes: int = MAX_JSON_BYTES, follow_symlinks: bool = True) -> Any:
    """:func:`parse_json` of regular file ``path`` (at most ``max_bytes``); ``what`` names it in errors."""
    text = read_text(path, what, max_bytes, follow_symlinks=follow_symlinks)
    return parse_json(text, f"{what} {path}", expect=expect)


def require(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it is of JSON type ``kind`` (``int`` excludes booleans), else ``ValueError``."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = any(isinstance(value, k) and not (k in (int, float) and isinstance(value, bool)) for k in kinds)
    if not ok:
        want = " or ".join(_JSON_TYPES.get(k, k.__name__) for k in kinds)
        raise ValueError(f"{what} must be {want}, got {type(value).__name__} ({_short(value)})")
    return value


def field(obj: dict, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """``obj[key]`` checked by :func:`require`; a missing key is a ``ValueError`` naming it."""
    if key not in obj:
        raise ValueError(f"{what} lacks {key!r}")
    return require(obj[key], kind, f"{what}: {key}")


def finite(value: Any, what: str, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite number in ``[low, high]``, else ``ValueError`` naming ``what``."""
    require(value, (int, float), what)
    if not math.isfinite(value) or not low <= value <= high:
        bounds = "" if (low, high) == (-math.inf, math.inf) else f" in [{low}, {high}]"
        raise ValueError(f"{what} must be a finite number{bounds}, got {value!r}")
    return float(value)


def _short(value: Any, limit: int = 60) -> str:
    text = printable(repr(value))
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------- text shown to people
def printable(text: str) -> str:
    """``text`` with control and format characters (newlines, ANSI escapes, bidi marks) escaped."""
    text = str(text)
    if all(unicodedata.category(c)[0] != "C" for c in text):
        return text
    return "".join(c if unicodedata.category(c)[0] != "C" else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def markdown_cell(text: Any) -> str:
    """A value as one markdown table cell: printable, pipes escaped."""
    return printable(str(text)).replace("|", "\\|")


def csv_cell(text: str) -> str:
    """A string as a spreadsheet cell that is never run as a formula (OWASP: a leading quote)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
