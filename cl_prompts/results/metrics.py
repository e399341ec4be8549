"""Continual-learning metrics computed from an accuracy matrix.

The accuracy matrix ``A`` is ``(T, T)``: row ``i`` is the state after training
experience ``i``, column ``j`` the test accuracy (percent) on experience ``j``.
Entries for experiences not trained yet (``j > i``) may be ``None``/NaN: they are
not used by any metric here. A row other than the last may be entirely ``None``: the run
did not evaluate after that experience (``eval_every``); metrics use the rows measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Matrix = Sequence[Sequence[float | None]]


def as_matrix(accuracy_matrix: Matrix) -> np.ndarray:
    """Validate ``accuracy_matrix`` and return it as a float array ``(T, T)``, ``None`` -> NaN.

    Raises ``ValueError`` when it is empty, not square, or when a seen entry
    (``j <= i``) is missing, not finite, or outside ``[0, 100]``.
    """
    rows = list(accuracy_matrix)
    if not rows:
        raise ValueError("accuracy_matrix must have at least one row, got an empty matrix")
    n = len(rows)
    out = np.full((n, n), np.nan, dtype=np.float64)
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != n:
            raise ValueError(
                f"accuracy_matrix must be square (T, T), got row {i} of length {len(row)} for T={n}"
            )
        if i < n - 1 and all(v is None for v in row):
            continue  # not evaluated after this experience (``eval_every``)
        for j, value in enumerate(row):
            if value is None:
                if j <= i:
                    raise ValueError(
                        f"accuracy_matrix[{i}][{j}] is missing: experience {j} was trained by row {i}"
                    )
                continue
            value = float(value)
            if j <= i and (not math.isfinite(value) or not 0.0 <= value <= 100.0):
                raise ValueError(
                    f"accuracy_matrix[{i}][{j}] must be a percentage in [0, 100], got {value}"
                )
            out[i, j] = value
    return out


def pad_rows(rows: Sequence[Sequence[float | None]], n: int) -> list[list[float | None]]:
    """Rows measured so far (row i has i + 1 entries) padded with ``None`` to ``n`` columns."""
    return [list(r) + [None] * (n - len(r)) for r in rows]


def final_average_accuracy(accuracy_matrix: Matrix) -> float:
    """Mean of the last row: accuracy on every experience after training them all."""
    a = as_matrix(accuracy_matrix)
    return float(a[-1].mean())


def average_accuracy_curve(accuracy_matrix: Matrix) -> list[float | None]:
    """``[mean(A[i, :i+1]) for i]``: average accuracy over the experiences seen so far (None: not evaluated)."""
    a = as_matrix(accuracy_matrix)
    return [None if np.isnan(a[i, 0]) else float(a[i, : i + 1].mean()) for i in range(a.shape[0])]


def forgetting_per_experience(accuracy_matrix: Matrix) -> list[float | None]:
    """For each old experience ``j < T-1``: ``max_{j <= i < T-1} A[i, j] - A[T-1, j]``.

    The best accuracy the experience ever had before the end, minus its final accuracy
    (None when no row before the last measured it).
    """
    a = as_matrix(accuracy_matrix)
    last = a.shape[0] - 1
    out: list[float | None] = []
    for j in range(last):
        earlier = a[j:last, j][~np.isnan(a[j:last, j])]
        out.append(float(earlier.max() - a[last, j]) if len(earlier) else None)
    return out


def average_forgetting(accuracy_matrix: Matrix) -> float | None:
    """Mean of the measured :func:`forgetting_per_experience`; ``None`` when there is none."""
    values = [v for v in forgetting_per_experience(accuracy_matrix) if v is not None]
    return float(np.mean(values)) if values else None


def backward_transfer(accuracy_matrix: Matrix) -> float | None:
    """BWT: mean over ``j < T-1`` of ``A[T-1, j] - A[j, j]`` (negative = forgetting).

    Experiences whose row ``j`` was not evaluated are left out; ``None`` when none is left.
    """
    a = as_matrix(accuracy_matrix)
    last = a.shape[0] - 1
    values = [a[last, j] - a[j, j] for j in range(last) if not np.isnan(a[j, j])]
    return float(np.mean(values)) if values else None


def summarize(accuracy_matrix: Matrix) -> dict[str, float | list[float] | None]:
    """All the metrics above in one dict (the keys of the results JSON)."""
    return {
        "final_average_accuracy": final_average_accuracy(accuracy_matrix),
        "average_forgetting": average_forgetting(accuracy_matrix),
        "backward_transfer": backward_transfer(accuracy_matrix),
        "average_accuracy_curve": average_accuracy_curve(accuracy_matrix),
        "forgetting_per_experience": forgetting_per_experience(accuracy_matrix),
    }
