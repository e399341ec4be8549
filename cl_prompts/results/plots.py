"""PNG plots of a run: accuracy-matrix heatmap and accuracy per experience over time."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cl_prompts.results.metrics import Matrix, as_matrix


def _pyplot():
    # Agg: no display needed (servers, CI); imported lazily so `import cl_prompts` stays fast.
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy_matrix(accuracy_matrix: Matrix, path: str | os.PathLike, title: str = "") -> Path:
    """Heatmap of the ``(T, T)`` accuracy matrix (rows: after training i; columns: test on j)."""
    a = as_matrix(accuracy_matrix)
    plt = _pyplot()
    n = a.shape[0]
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    image = ax.imshow(np.ma.masked_invalid(a), vmin=0, vmax=100, cmap="viridis")
    if n <= 20:  # numbers stay readable up to ~20 experiences
        for i in range(n):
            for j in range(n):
                if np.isfinite(a[i, j]):
                    color = "black" if a[i, j] > 60 else "white"
                    ax.text(j, i, f"{a[i, j]:.0f}", ha="center", va="center", fontsize=7, color=color)
    ax.set_xlabel("test experience j")
    ax.set_ylabel("after training experience i")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_title(title or "accuracy (%)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_accuracy_over_time(
    accuracy_matrix: Matrix, path: str | os.PathLike, title: str = ""
) -> Path:
    """One line per experience j: its accuracy after each training step i >= j, plus the average."""
    a = as_matrix(accuracy_matrix)
    plt = _pyplot()
    n = a.shape[0]
    steps = np.arange(n)
    fig, ax = plt.subplots(figsize=(7, 4))
    for j in range(n):
        measured = np.isfinite(a[j:, j])  # rows not evaluated (eval_every) are skipped, not gaps
        ax.plot(steps[j:][measured], a[j:, j][measured], marker="o", markersize=3, linewidth=1,
                label=f"exp {j}")
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
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_plots(accuracy_matrix: Matrix, out_dir: str | os.PathLike, title: str = "") -> list[Path]:
    """Write ``accuracy_matrix.png`` and ``accuracy_over_time.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        plot_accuracy_matrix(accuracy_matrix, out_dir / "accuracy_matrix.png", title),
        plot_accuracy_over_time(accuracy_matrix, out_dir / "accuracy_over_time.png", title),
    ]
