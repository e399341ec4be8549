"""The run folder (``--out``): one run at a time, old results kept until a new run succeeds.

- :func:`run_lock` holds ``<out>/.cl-prompts.lock`` (an ``flock`` on a file naming the
  holder's pid and host) for the whole run: a second run on the same folder is refused
  with the holder named. The kernel drops the lock when its process dies, so a killed
  run leaves no lock that blocks a resume; its leftover file is recognised as stale.
- :func:`prepare_out_dir` refuses a folder holding results unless ``--overwrite``; with
  ``--overwrite`` the new run writes into a staging folder inside ``out`` and
  :func:`commit_staged` moves it over the old results only once it has finished.
- :func:`remove_stale_files` deletes what killed runs leave behind (temporary files,
  staging folders, a checkpoint that never completed).

The folder may come from someone else (an extracted archive): the lock file is never
followed through a symlink, and every deletion stays inside ``out`` (a symlink is
unlinked, never followed; :func:`cl_prompts.safe_io.remove_inside`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

from cl_prompts import results as res
from cl_prompts.results.loggers import LOG_DIRS
from cl_prompts.run import checkpoints as ckpt
from cl_prompts.safe_io import UnsafeFileError, read_json, refuse_symlink, remove_inside

LOCK_FILE = ".cl-prompts.lock"
STAGING_PREFIX = ".staging-"
REPLACED_PREFIX = ".replaced-"
OUTPUT_FILES = (res.RESULTS_FILE, "accuracy_matrix.png", "accuracy_over_time.png", "summary.md")


class RunDirBusyError(OSError):
    """Another live process holds the run folder's lock."""


def _holder(path: Path) -> dict:
    try:
        return read_json(path, "lock file", max_bytes=1 << 16, follow_symlinks=False)
    except (OSError, ValueError):
        return {}


def _describe(info: dict) -> str:
    if not info:
        return "an unknown process"
    return f"pid {info.get('pid')} on host {info.get('host')}, started {info.get('started')}"


@contextlib.contextmanager
def run_lock(out: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of run folder ``out`` (created when missing) for the ``with`` block.

    Raises ``RunDirBusyError`` naming the holder when a live run holds it, and
    ``PermissionError`` when ``out`` cannot be written (before any work is done). A folder
    this call created is removed again when the run leaves nothing in it.
    """
    import fcntl  # POSIX; imported here so that importing the package works elsewhere

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out must be a directory, got the file {out}")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    while True:
        refuse_symlink(path, "lock file")  # a planted link would make us overwrite its target
        try:  # O_NOFOLLOW: a link planted between the check and the open is refused too
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
        except PermissionError as exc:
            raise PermissionError(f"out dir {out} is not writable ({exc.strerror})") from exc
        except OSError as exc:
            raise UnsafeFileError(f"lock file {path} cannot be opened safely ({exc.strerror}); "
                                  "remove it if no run is using the folder") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafeFileError(f"lock file {path} is not a regular file; refusing to use it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirBusyError(
                f"out dir {out} is in use by another run ({_describe(_holder(path))}); wait for it "
                f"to end or pick another --out"
            ) from None
        # The holder before us may have unlinked the file after we opened it: lock the one on disk.
        if path.exists() and os.stat(path).st_ino == os.fstat(fd).st_ino:
            break
        os.close(fd)
    stale = _holder(path)
    if stale:
        warnings.warn(f"{path}: a stale lock of a run that ended without releasing it "
                      f"({_describe(stale)}); taking it over", UserWarning, stacklevel=3)
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(info) + "\n").encode())
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
        if created and not any(out.iterdir()):
            out.rmdir()  # a run that failed before writing anything leaves no empty folder


def remove_stale_files(out: Path) -> list[Path]:
    """Delete what interrupted runs left in ``out``; call it holding the lock. Returns the paths.

    Temporary files of atomic writes, staging and replaced folders of ``--overwrite``, and a
    ``checkpoint/`` without ``LATEST`` (a run killed during its first checkpoint, which
    cannot be resumed; the run starts over).
    """
    stale = [p for p in out.glob(".*") if p.name.startswith((STAGING_PREFIX, REPLACED_PREFIX))]
    stale += [p for f in OUTPUT_FILES for p in out.glob(f".{f}.*.tmp")]
    root = ckpt.checkpoint_root(out)
    if root.is_dir():
        if ckpt.has_checkpoint(out):
            stale += list(root.glob(".*"))  # unfinished checkpoint folders and LATEST temp files
        else:
            stale.append(root)
    for p in stale:
        remove_inside(p, out)
    return stale


def _ours(out: Path) -> list[Path]:
    found = [out / f for f in OUTPUT_FILES if (out / f).exists()]
    if ckpt.checkpoint_root(out).exists():
        found.append(ckpt.checkpoint_root(out))
    return found


def prepare_out_dir(out: Path, *, resume: bool, overwrite: bool, resumable: bool = True) -> Path:
    """Check ``out`` for this run and return the folder the run writes into.

    A fresh run refuses a folder holding results unless ``overwrite``; then it writes into a
    new staging folder inside ``out`` (returned) and the old results stay until
    :func:`commit_staged`. ``resumable``: whether the refusal may suggest ``--resume``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out must be a directory, got the file {out}")
    if resume:
        if not ckpt.has_checkpoint(out):
            raise FileNotFoundError(f"nothing to resume: no checkpoint in {out}")
        return out
    ours = _ours(out)
    if ours and not overwrite:
        raise FileExistsError(
            f"out dir {out} already holds results ({', '.join(p.name for p in ours)}); "
            "pass --overwrite to replace them" + (" or --resume to continue" if resumable else "")
        )
    out.mkdir(parents=True, exist_ok=True)
    if not ours:
        return out
    staging = out / f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    return staging


def commit_staged(staging: Path, out: Path) -> None:
    """Replace the run outputs in ``out`` by those of the finished run in ``staging``.

    Each file is swapped with ``os.replace`` (atomic), so ``results.json`` is always the old
    or the new one, never missing; other files of the user in ``out`` stay.
    """
    if staging == out:
        return
    for f in OUTPUT_FILES:
        if (staging / f).exists():
            os.replace(staging / f, out / f)
        else:
            (out / f).unlink(missing_ok=True)  # e.g. the old plots after a --no-plots rerun
    for logs in LOG_DIRS:
        if (staging / logs).exists():  # the new run's logs replace the old run's
            remove_inside(out / logs, out)
            os.rename(staging / logs, out / logs)
    new_ckpt, old_ckpt = ckpt.checkpoint_root(staging), ckpt.checkpoint_root(out)
    if old_ckpt.exists():
        replaced = out / f"{REPLACED_PREFIX}{uuid.uuid4().hex[:8]}"
        os.rename(old_ckpt, replaced)
        remove_inside(replaced, out)
    if new_ckpt.exists():
        os.rename(new_ckpt, old_ckpt)
    remove_inside(staging, out)
