"""Figures of the analysis data; each helper draws on ``ax`` (a new figure when None) and returns it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cl_prompts.results.plots import pyplot


def _axes(ax, size: tuple[float, float]):
    if ax is None:
        _, ax = pyplot().subplots(figsize=size)
    return ax


def _names(names: Sequence[str] | None, n: int, what: str) -> list[str]:
    if names is None:
        return [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError(f"names must name each of the {n} {what}, got {len(names)}")
    return [str(x) for x in names]


def plot_task_identification(matrix: np.ndarray, names: Sequence[str] | None = None, ax=None,
                             title: str = ""):
    """Heatmap of :func:`~cl_prompts.analysis.task_identification`'s (E, E) ``matrix`` (in %)."""
    m = 100.0 * np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be (E, E), got {m.shape}")
    n = m.shape[0]
    labels = _names(names, n, "experiences")
    ax = _axes(ax, (1.5 + 0.5 * n, 1.2 + 0.5 * n))
    image = ax.imshow(m, vmin=0, vmax=100, cmap="magma")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{m[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="black" if m[i, j] > 60 else "white")
    ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    ax.set_xlabel("routed to experience j")
    ax.set_ylabel("inputs of experience i")
    ax.set_title(title or f"task identification (diagonal mean {np.mean(np.diag(m)):.1f}%)")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def plot_prompt_usage(share: np.ndarray, names: Sequence[str] | None = None, ax=None, title: str = ""):
    """Heatmap of :func:`~cl_prompts.analysis.prompt_usage`'s ``share`` (E, P): which prompts each experience uses."""
    s = np.asarray(share, dtype=float)
    if s.ndim != 2:
        raise ValueError(f"share must be (E, P), got {s.shape}")
    n, p = s.shape
    labels = _names(names, n, "experiences")
    ax = _axes(ax, (min(2.0 + 0.35 * p, 14.0), 1.2 + 0.4 * n))
    image = ax.imshow(s, vmin=0, vmax=max(1.0, float(s.max(initial=0))), cmap="viridis", aspect="auto")
    ax.set_yticks(range(n), labels, fontsize=7)
    ax.set_xlabel("prompt id")
    ax.set_ylabel("inputs of experience")
    ax.set_title(title or "prompt usage (selections per input)")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def plot_key_map(data: dict[str, np.ndarray], names: Sequence[str] | None = None, ax=None, title: str = ""):
    """Scatter of :func:`~cl_prompts.analysis.key_map`: queries as dots and keys as stars, coloured
    by experience (shared keys in grey)."""
    experiences = np.concatenate([data["query_experience"], data["key_experience"]])
    n = int(experiences.max(initial=-1)) + 1
    labels = _names(names, n, "experiences") if n else []
    ax = _axes(ax, (7, 6))
    cmap = pyplot().get_cmap("tab20" if n > 10 else "tab10")
    for e in range(n):
        q = data["queries"][data["query_experience"] == e]
        ax.scatter(q[:, 0], q[:, 1], s=6, alpha=0.35, color=cmap(e % cmap.N), label=labels[e])
    for e in range(-1, n):
        k = data["keys"][data["key_experience"] == e]
        if len(k):
            ax.scatter(k[:, 0], k[:, 1], s=90, marker="*", edgecolors="black", linewidths=0.6,
                       color="lightgrey" if e < 0 else cmap(e % cmap.N))
    ex = data["explained"]
    ax.set_xlabel(f"PC 1 ({100 * ex[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * ex[1]:.0f}% of variance)")
    ax.set_title(title or "queries (dots) and keys (stars) by experience")
    if n:
        ax.legend(fontsize=7, markerscale=2, loc="best", ncol=2 if n > 8 else 1)
    return ax
