"""Pieces of the closed-form classifiers (``ranpac``, ``slda``): exact, order-free statistics.

Both methods only accumulate sums over the samples they observe (per-class sums, one
Gram or scatter matrix) in float64 and solve a linear system when an experience ends.
Sums do not depend on the order or batching of the data, so the classifier after any
sequence of experiences equals the one solved on all their data at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def unit_rows(x: Tensor, normalize: bool) -> Tensor:
    """(B, D) float64 features, unit-normalised per row when ``normalize``."""
    x = x.to(torch.float64)
    return F.normalize(x, dim=1) if normalize else x


def random_relu_features(x: Tensor, projection: Tensor) -> Tensor:
    """RanPAC's expansion: ReLU(x @ projection); x (B, D), projection (D, M) -> (B, M) float64."""
    return torch.relu(x.to(torch.float64) @ projection.to(torch.float64))


def solve_spd(matrix: Tensor, rhs: Tensor, ridge: float) -> Tensor:
    """(matrix + ridge * I)^-1 rhs for a symmetric positive semi-definite (M, M) ``matrix``.

    Cholesky in float64; ``ridge`` > 0 makes the system positive definite.
    """
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    factor, info = torch.linalg.cholesky_ex(matrix + ridge * eye)
    if int(info) != 0:  # numerically indefinite (tiny ridge): fall back to a general solve
        return torch.linalg.solve(matrix + ridge * eye, rhs)
    return torch.cholesky_solve(rhs, factor)


def one_hot_sums(features: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """(C, M) per-class sums of ``features`` (B, M) over ``targets`` (B,)."""
    out = features.new_zeros(num_classes, features.shape[1])
    return out.index_add_(0, targets, features)
