"""Checkpoints of a continual run, written after every experience and read by ``--resume``.

Layout under ``<out>/checkpoint/``::

    LATEST                  JSON {"dir": "exp-0002-1a2b3c4d", "manifest_sha256": "..."}:
                            the one valid checkpoint and the hash of its manifest
    exp-0002-1a2b3c4d/
        model/              method.save_pretrained(...)   (safetensors + JSON)
        rng.safetensors     torch / CUDA / numpy RNG states
        state.json          position in the stream, partial results, identity, python RNG
        manifest.json       size and sha256 of every file above; a file not listed, a changed
                            or missing file, or an edited manifest is refused on load

Atomicity: a new checkpoint is written into a fresh temporary folder, renamed to its
final unique name, and only then is ``LATEST`` replaced (``os.replace``, atomic on
POSIX). A crash at any point leaves the previous checkpoint valid. Older folders are
removed afterwards. No pickle anywhere: weights in safetensors, the rest in JSON.

The manifest finds corruption, not tampering: whoever edits a file can recompute its hash
(docs/security.md). So a checkpoint is also read as untrusted: no symlink anywhere in it
(nor as ``checkpoint/`` itself), bounded JSON of the expected types, a state whose
position in the stream agrees with the saved model, and deletions that stay in the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cl_prompts.files import atomic_write_text
from cl_prompts.safe_io import (
    UnsafeFileError,
    field,
    finite,
    open_regular,
    read_json,
    refuse_symlink,
    remove_inside,
    require,
)

CHECKPOINT_DIR = "checkpoint"
LATEST = "LATEST"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
REQUIRED_FILES = ("state.json", "rng.safetensors")
MAX_FILE_BYTES = 1 << 40  # what a manifest may list; the hash reads the file once


# --------------------------------------------------------------------------- RNG states
def capture_rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Global RNG states as (tensors for safetensors, JSON-able rest): torch, CUDA, numpy, python."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64))
    version, py_state, gauss = random.getstate()
    meta = {
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "state": list(py_state), "gauss": gauss},
    }
    return tensors, meta


def restore_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any], source: str = "checkpoint") -> None:
    """Inverse of :func:`capture_rng_state`; a malformed state is a ``ValueError`` naming ``source``."""
    try:
        _restore_rng_state(tensors, meta)
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, RuntimeError) as exc:
        raise ValueError(f"{source}: the saved random states are malformed ({type(exc).__name__}: {exc})") from None


def _restore_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    n = meta["numpy"]
    keys = tensors["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached"]))
    p = meta["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


# --------------------------------------------------------------------------- helpers
def _sha256(path: Path) -> str:
    h = hashlib.sha256()  # never through a symlink, never a FIFO or /dev/zero
    with os.fdopen(open_regular(path, "checkpoint file", MAX_FILE_BYTES, follow_symlinks=False), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.relative_to(root).as_posix() != MANIFEST)


def _fsync_tree(root: Path) -> None:
    # Data must be on disk before LATEST points at it, or a power cut could leave junk.
    for p in [*root.rglob("*"), root]:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ``checkpoint_every="auto"``: a checkpoint that took longer than AUTO_SLOW_WRITE seconds to
# write is followed by the next one only once AUTO_WORK_PER_WRITE times as long has passed, so
# writing takes at most about 1/21 of the run; quicker ones are written after every experience.
AUTO_SLOW_WRITE = 1.0
AUTO_WORK_PER_WRITE = 20.0


def checkpoint_due(every: float | str, since_last: float, last_write: float, *, final: bool) -> bool:
    """Whether a checkpoint is written after this experience.

    every: ``RunConfig.checkpoint_every`` (seconds, 0 for every experience, or ``"auto"``);
    since_last: seconds since the last checkpoint was written (or the run started);
    last_write: seconds the last checkpoint took to write (0 before the first);
    final: the run's last experience, whose checkpoint is the saved model: always due.
    """
    if final:
        return True
    if every == "auto":
        return last_write <= AUTO_SLOW_WRITE or since_last >= AUTO_WORK_PER_WRITE * last_write
    return since_last >= float(every)


def checkpoint_root(out_dir: str | os.PathLike) -> Path:
    """``<out_dir>/checkpoint``; refused when it is a symlink (clean-ups would delete its target's files)."""
    root = Path(out_dir) / CHECKPOINT_DIR
    refuse_symlink(root, "checkpoint folder")
    return root


def has_checkpoint(out_dir: str | os.PathLike) -> bool:
    return (checkpoint_root(out_dir) / LATEST).is_file()


# --------------------------------------------------------------------------- save
def save_checkpoint(
    out_dir: str | os.PathLike,
    method: torch.nn.Module,
    *,
    experience: int,
    state: dict[str, Any],
    identity: dict[str, Any],
) -> Path:
    """Atomically save a checkpoint taken after training + evaluating ``experience``.

    ``method``: a ``ContinualMethod`` (saved with ``save_pretrained``).
    ``state``: JSON-able run progress (next experience, partial results, timings).
    ``identity``: what a resume must match (method name, backbone identity, num_classes,
    run config); compared key by key by :func:`load_checkpoint`.
    Returns the folder of the new checkpoint.
    """
    root = checkpoint_root(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    name = f"exp-{experience:04d}-{uuid.uuid4().hex[:8]}"
    tmp = root / f".tmp-{name}"
    try:
        tmp.mkdir()
        method.save_pretrained(tmp / "model")
        rng_tensors, rng_meta = capture_rng_state()
        save_file(rng_tensors, str(tmp / "rng.safetensors"))
        doc = {
            "format_version": FORMAT_VERSION,
            "experience": int(experience),
            "identity": identity,
            "state": state,
            "rng": rng_meta,
        }
        (tmp / "state.json").write_text(json.dumps(doc, indent=1, allow_nan=False), "utf-8")
        files = {p.relative_to(tmp).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
                 for p in _files(tmp)}
        manifest = json.dumps({"format_version": FORMAT_VERSION, "files": files}, indent=1)
        (tmp / MANIFEST).write_text(manifest, "utf-8")
        _fsync_tree(tmp)
        final = root / name
        os.rename(tmp, final)
        pointer = {"dir": name, "manifest_sha256": hashlib.sha256(manifest.encode("utf-8")).hexdigest()}
        atomic_write_text(root / LATEST, json.dumps(pointer) + "\n")
    except BaseException as exc:
        for unfinished in (tmp, root / name):  # LATEST still names the previous checkpoint
            try:
                remove_inside(unfinished, root)
            except OSError:
                pass
        if isinstance(exc, (OSError, SafetensorError)):  # a full disk: one clear error, not a traceback
            raise OSError(f"could not write the checkpoint of experience {experience} in {root} "
                          f"({exc}); the previous checkpoint is kept") from exc
        raise
    # Only now is the old checkpoint unneeded.
    for old in root.iterdir():
        if old.is_dir() and old.name != name:
            remove_inside(old, root)
    return final


# --------------------------------------------------------------------------- load
def _latest_dir(out_dir: str | os.PathLike) -> tuple[Path, str]:
    """The folder named by ``LATEST`` and the manifest hash stored with it."""
    root = checkpoint_root(out_dir)
    latest = root / LATEST
    if not Path(out_dir).exists():
        raise FileNotFoundError(f"resume folder not found: {out_dir}")
    if not latest.is_file():
        if root.is_dir():
            raise FileNotFoundError(
                f"no complete checkpoint to resume in {out_dir}: the run stopped before its first "
                "checkpoint was written; start it again without --resume (it starts over)"
            )
        raise FileNotFoundError(f"no checkpoint to resume in {out_dir} (expected {latest})")
    try:
        pointer = read_json(latest, "checkpoint pointer", max_bytes=1 << 16, follow_symlinks=False)
        name = field(pointer, "dir", str, f"checkpoint pointer {latest}")
        digest = field(pointer, "manifest_sha256", str, f"checkpoint pointer {latest}")
        if "/" in name or "\\" in name or name.startswith(".") or not name:
            raise ValueError(f"dir must name a folder beside {latest}, got {name!r}")
    except UnsafeFileError:
        raise
    except ValueError as exc:
        raise ValueError(f"checkpoint pointer {latest} is corrupted or from an older cl_prompts "
                         f"(checkpoint format {FORMAT_VERSION} is needed): {exc}") from None
    folder = root / name
    refuse_symlink(folder, "checkpoint folder")
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint folder {folder} named by {latest} is missing")
    return folder, digest


def _read_manifest(folder: Path, digest: str) -> dict[str, dict[str, Any]]:
    path = folder / MANIFEST
    if not path.is_file() and not path.is_symlink():
        raise FileNotFoundError(f"checkpoint manifest missing: {path}")
    if _sha256(path) != digest:
        raise ValueError(f"checkpoint manifest {path} does not match the hash in {LATEST}: it was "
                         "edited or corrupted")
    try:
        manifest = read_json(path, "checkpoint manifest", expect=None, follow_symlinks=False)
    except UnsafeFileError:
        raise
    except ValueError as exc:
        raise ValueError(f"checkpoint manifest is corrupted: {exc}") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and type(v.get("size")) is int and isinstance(v.get("sha256"), str)
        for v in files.values()
    ):
        raise ValueError(f"checkpoint manifest {path} must map every file to its size and sha256")
    return files


def verify_checkpoint(folder: Path, manifest_sha256: str) -> dict[str, Any]:
    """Check ``folder`` against its manifest (and the manifest against its hash); return ``state.json``.

    Every file must be listed, present, of the listed size and sha256; the required files
    (state, RNG states, the model folder) must be there.
    """
    links = [p for p in folder.rglob("*") if p.is_symlink()]
    if links:  # we never write one; a planted one could point at any file (or /dev/zero)
        raise UnsafeFileError(f"checkpoint {folder} holds a symlink, {links[0]}; refusing to read it")
    files = _read_manifest(folder, manifest_sha256)
    on_disk = {p.relative_to(folder).as_posix() for p in _files(folder)}
    unlisted = sorted(on_disk - set(files))
    if unlisted:
        raise ValueError(f"checkpoint {folder} holds files its manifest does not list: {unlisted[:5]}")
    needed = [f for f in REQUIRED_FILES if f not in files]
    if needed or not any(f.startswith("model/") for f in files):
        raise ValueError(f"checkpoint manifest of {folder} lacks {needed or ['model/']}")
    for rel, entry in sorted(files.items()):
        path = folder / rel
        if rel not in on_disk:
            raise FileNotFoundError(f"checkpoint file missing: {path}")
        if path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
            raise ValueError(f"checkpoint file {path} is truncated or corrupted (size or sha256 mismatch)")
    source = folder / "state.json"
    doc = read_json(source, "checkpoint state", follow_symlinks=False)
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint format_version must be {FORMAT_VERSION}, got {doc.get('format_version')}"
        )
    field(doc, "identity", dict, str(source))
    field(doc, "rng", dict, str(source))
    state = field(doc, "state", dict, str(source))
    experience = field(doc, "experience", int, str(source))
    if "next_experience" in state:
        done = field(state, "next_experience", int, f"{source}: state")
        if done != experience + 1:
            raise ValueError(f"{source}: state.next_experience is {done}, but the checkpoint was taken "
                             f"after experience {experience}")
    check_state(state, experience + 1, f"{source}: state")
    return doc


def check_state(state: dict[str, Any], done: int, what: str, required: tuple[str, ...] = ()) -> None:
    """The run progress of a checkpoint after ``done`` experiences: one row per experience,
    numbers where numbers go. Keys in ``required`` must be there; the others are checked when present."""
    missing = [k for k in required if k not in state]
    if missing:
        raise ValueError(f"{what} lacks {missing}")
    for key in ("accuracy", "task_id", "train_seconds", "eval_seconds"):
        if key in state and len(field(state, key, list, what)) != done:
            raise ValueError(f"{what}.{key} holds {len(state[key])} rows for {done} experiences")
    for key in ("accuracy", "task_id"):
        for i, row in enumerate(state.get(key, [])):
            if not isinstance(row, list) or len(row) != i + 1:
                raise ValueError(f"{what}.{key}[{i}] must be a list of {i + 1} values")
            for v in row:
                if v is not None:
                    finite(v, f"{what}.{key}[{i}]", 0.0, 100.0)
    for key in ("train_seconds", "eval_seconds"):
        for v in state.get(key, []):
            finite(v, f"{what}.{key}", 0.0)
    for key in ("train_samples", "train_steps"):
        if key in state:
            require(state[key], int, f"{what}.{key}")
    for key in ("resumed_at", "world_sizes"):
        for v in require(state.get(key, []), list, f"{what}.{key}"):
            require(v, int, f"{what}.{key}")
    if "peak_memory_mb" in state:
        finite(state["peak_memory_mb"], f"{what}.peak_memory_mb", 0.0)
    if state.get("calibration") is not None:
        require(state["calibration"], dict, f"{what}.calibration")
    if state.get("final_subsample") is not None:
        for v in require(state["final_subsample"], list, f"{what}.final_subsample"):
            finite(v, f"{what}.final_subsample", 0.0, 100.0)


def check_identity(saved: dict[str, Any], expected: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first key whose saved value differs from the expected one.

    Nested dicts (e.g. ``backbone``, ``config``) are compared key by key.
    """
    for key, want in expected.items():
        have = saved.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            for sub in sorted(set(want) | set(have)):
                if have.get(sub) != want.get(sub):
                    raise ValueError(
                        f"checkpoint mismatch in {key}.{sub}: saved {have.get(sub)!r}, "
                        f"this run has {want.get(sub)!r}"
                    )
        elif have != want and key == "data":
            raise ValueError(
                f"checkpoint mismatch in data: the texts, labels, splits or class names differ from "
                f"the checkpoint's (sha256 {str(have)[:12]} saved, {str(want)[:12]} now); a resume "
                "needs the data the run started with"
            )
        elif have != want:
            raise ValueError(
                f"checkpoint mismatch in {key}: saved {have!r}, this run has {want!r}"
            )


def load_checkpoint(
    out_dir: str | os.PathLike,
    backbone: Any,
    *,
    identity: dict[str, Any],
    restore_rng: bool = True,
    loader: Callable[[Path, Any], torch.nn.Module] | None = None,
    required_state: tuple[str, ...] = (),
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load the latest checkpoint of ``out_dir``: returns ``(method, state)``.

    Refuses (``ValueError``) a checkpoint whose ``identity`` (method, backbone,
    num_classes, run config) differs from the expected one, or whose files fail
    their sha256 check. RNG states are restored *after* the model is built, because
    building a model draws random initial values. ``loader(path, backbone)`` defaults
    to ``cl_prompts.methods.load_model``. ``required_state``: keys the state must hold
    (the runner's: ``RunState.REQUIRED``).
    """
    if loader is None:
        from cl_prompts.methods import load_model as loader

    folder, digest = _latest_dir(out_dir)
    doc = verify_checkpoint(folder, digest)
    check_state(doc["state"], doc["experience"] + 1, f"{folder / 'state.json'}: state", required_state)
    check_identity(doc["identity"], identity)
    method = loader(folder / "model", backbone)
    _check_progress(method, doc["experience"] + 1, identity.get("experiences"), folder)
    if restore_rng:
        rng = folder / "rng.safetensors"
        try:
            tensors = load_file(str(rng))
        except SafetensorError as exc:
            raise ValueError(f"{rng} is not a valid safetensors file ({exc})") from None
        restore_rng_state(tensors, doc["rng"], str(rng))
    return method, doc["state"]


def _check_progress(method: Any, done: int, stream: list | None, folder: Path) -> None:
    """A resume starts after the experiences the saved model finished, not where state.json says."""
    experiences, finished = getattr(method, "experiences", None), getattr(method, "finished", None)
    if experiences is None or finished is None:  # not a ContinualMethod: nothing to compare
        return
    if len(experiences) != done or not all(finished):
        raise ValueError(f"{folder / 'state.json'}: the checkpoint resumes at experience {done}, but the saved model "
                         f"finished {sum(finished)} of {len(experiences)} experiences")
    if stream is not None and [list(e) for e in experiences] != [list(e) for e in stream[:done]]:
        raise ValueError(f"{folder / 'model'}: the saved model's experiences differ from the run's first {done}")


def latest_model_dir(out_dir: str | os.PathLike) -> Path:
    """The saved method folder of the latest checkpoint in ``out_dir`` (verified first)."""
    folder, digest = _latest_dir(out_dir)
    verify_checkpoint(folder, digest)
    return folder / "model"


def read_run_config(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The run options saved with the latest checkpoint of ``out_dir`` (``identity["run"]``).

    Lets ``cl-prompts run --resume DIR`` continue without repeating every option.
    """
    doc = verify_checkpoint(*_latest_dir(out_dir))
    run = doc["identity"].get("run")
    if not isinstance(run, dict):
        raise ValueError(f"checkpoint in {out_dir} holds no run configuration")
    return dict(run)
