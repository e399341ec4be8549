"""PNG plots of a run: accuracy-matrix heatmap and accuracy per experience over time."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cl_prompts.files import atomic_write
from cl_prompts.results.metrics import Matrix, as_matrix


def pyplot():
    """matplotlib.pyplot, imported lazily (``import cl_prompts`` stays fast).

    Outside Jupyter the backend is Agg (no display needed: servers, CI); inside a notebook
    the kernel's own backend is kept, so figures show inline.
    """
    import sys

    import matplotlib

    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    fig.tight_layout()
    # atomic: replaces a symlink at ``path`` instead of writing through it (a shared run folder)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    pyplot().close(fig)
    return path


def _check_labels(labels: Sequence[str] | None, n: int) -> list[str]:
    if labels is None:
        return [str(j) for j in range(n)]
    if len(labels) != n:
        raise ValueError(f"labels must name each of the {n} experiences, got {len(labels)}")
    return [str(x) for x in labels]


def accuracy_matrix_axes(accuracy_matrix: Matrix, ax=None, title: str = "",
                         labels: Sequence[str] | None = None):
    """Draw the ``(T, T)`` accuracy heatmap on ``ax`` (a new figure when None); returns ``ax``.

    labels: T names of the experiences (e.g. CLINC150's domains) for the ticks.
    """
    a = as_matrix(accuracy_matrix)
    n = a.shape[0]
    names = _check_labels(labels, n)
    if ax is None:
        width = 1.0 + 0.55 * n + (1.5 if labels is not None else 0.0)
        _, ax = pyplot().subplots(figsize=(width, 0.8 + 0.5 * n + (1.0 if labels is not None else 0.0)))
    image = ax.imshow(np.ma.masked_invalid(a), vmin=0, vmax=100, cmap="viridis")
    if n <= 20:  # numbers stay readable up to ~20 experiences
        for i in range(n):
            for j in range(n):
                if np.isfinite(a[i, j]):
                    color = "black" if a[i, j] > 60 else "white"
                    ax.text(j, i, f"{a[i, j]:.0f}", ha="center", va="center", fontsize=7, color=color)
    ax.set_xlabel("test experience j")
    ax.set_ylabel("after training experience i")
    ax.set_xticks(range(n), names, rotation=90 if labels is not None else 0, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_title(title or "accuracy (%)")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def accuracy_over_time_axes(accuracy_matrix: Matrix, ax=None, title: str = "",
                            labels: Sequence[str] | None = None):
    """One line per experience j (its accuracy after each step i >= j) and the average, on ``ax``."""
    a = as_matrix(accuracy_matrix)
    n = a.shape[0]
    names = _check_labels(labels, n)
    if ax is None:
        _, ax = pyplot().subplots(figsize=(7, 4))
    steps = np.arange(n)
    for j in range(n):
        measured = np.isfinite(a[j:, j])  # rows not evaluated (eval_every) are skipped, not gaps
        ax.plot(steps[j:][measured], a[j:, j][measured], marker="o", markersize=3, linewidth=1,
                label=names[j] if labels is not None else f"exp {j}")
    average = np.array([a[i, : i + 1].mean() for i in range(n)])  # NaN where not evaluated
    measured = np.isfinite(average)
    ax.plot(steps[measured], average[measured], color="black", linewidth=2.5, label="average (seen)")
    ax.set_xlabel("after training experience")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 101)
    ax.set_xticks(steps)
    ax.set_title(title or "accuracy on each experience over time")
    ax.legend(fontsize=7, ncol=2 if n > 6 else 1, loc="best")
    ax.grid(alpha=0.3)
    return ax


def plot_accuracy_matrix(accuracy_matrix: Matrix, path: str | os.PathLike, title: str = "",
                         labels: Sequence[str] | None = None) -> Path:
    """Save the heatmap of :func:`accuracy_matrix_axes` as a PNG at ``path``."""
    return _save(accuracy_matrix_axes(accuracy_matrix, title=title, labels=labels).figure, path)


def plot_accuracy_over_time(accuracy_matrix: Matrix, path: str | os.PathLike, title: str = "",
                            labels: Sequence[str] | None = None) -> Path:
    """Save the lines of :func:`accuracy_over_time_axes` as a PNG at ``path``."""
    return _save(accuracy_over_time_axes(accuracy_matrix, title=title, labels=labels).figure, path)


def write_plots(accuracy_matrix: Matrix, out_dir: str | os.PathLike, title: str = "",
                labels: Sequence[str] | None = None) -> list[Path]:
    """Write ``accuracy_matrix.png`` and ``accuracy_over_time.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        plot_accuracy_matrix(accuracy_matrix, out_dir / "accuracy_matrix.png", title, labels),
        plot_accuracy_over_time(accuracy_matrix, out_dir / "accuracy_over_time.png", title, labels),
    ]
