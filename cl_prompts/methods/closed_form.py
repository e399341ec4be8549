"""Pieces of the closed-form classifiers (``ranpac``, ``slda``): exact, order-free statistics.

Both methods only accumulate sums over the samples they observe (per-class sums, one
Gram or scatter matrix) in float64 and solve a linear system when an experience ends.
Sums do not depend on the order or batching of the data, so the classifier after any
sequence of experiences equals the one solved on all their data at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cl_prompts.methods.base import ContinualMethod


def unit_rows(x: Tensor, normalize: bool) -> Tensor:
    """(B, D) float64 features, unit-normalised per row when ``normalize``."""
    x = x.to(torch.float64)
    return F.normalize(x, dim=1) if normalize else x


def random_relu_features(x: Tensor, projection: Tensor) -> Tensor:
    """RanPAC's expansion: ReLU(x @ projection); x (B, D), projection (D, M) -> (B, M) float64."""
    return torch.relu(x.to(torch.float64) @ projection.to(torch.float64))


def solve_spd(matrix: Tensor, rhs: Tensor, ridge: float) -> Tensor:
    """(matrix + ridge * I)^-1 rhs for a symmetric positive semi-definite (M, M) ``matrix``.

    Cholesky in float64; ``ridge`` > 0 makes the system positive definite. On CPU it runs
    on one thread: LAPACK's blocked factorisation gives other bits with other thread counts,
    and a 5,000-wide solve costs about 2 s either way (docs/reproducibility.md). The result
    is contiguous: a solve of a transposed ``rhs`` comes back column-major, and a matmul
    reads the two layouts with different kernels (other last bits than the loaded copy).
    """
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    with one_thread(matrix.device):
        factor, info = torch.linalg.cholesky_ex(matrix + ridge * eye)
        if int(info) != 0:  # numerically indefinite (tiny ridge): fall back to a general solve
            return torch.linalg.solve(matrix + ridge * eye, rhs).contiguous()
        return torch.cholesky_solve(rhs, factor).contiguous()


@contextlib.contextmanager
def one_thread(device: torch.device) -> Iterator[None]:
    """Run the block with one intra-op CPU thread (no change on other devices)."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def one_hot_sums(features: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """(C, M) per-class sums of ``features`` (B, M) over ``targets`` (B,)."""
    out = features.new_zeros(num_classes, features.shape[1])
    return out.index_add_(0, targets, features)


def register_class_sums(module: nn.Module, num_classes: int, width: int) -> None:
    """Give ``module`` the buffers ``class_sums`` (C, width) and ``class_counts`` (C,), float64.

    float64 sums: the means do not depend on how the data was batched.
    """
    module.register_buffer("class_sums", torch.zeros(num_classes, width, dtype=torch.float64))
    module.register_buffer("class_counts", torch.zeros(num_classes, dtype=torch.float64))


def add_to_class_sums(module: nn.Module, features: Tensor, targets: Tensor) -> None:
    """Add ``features`` (B, width) to their classes' sums (``targets`` (B,)) and counts."""
    module.class_sums += one_hot_sums(features.to(torch.float64), targets, module.class_sums.shape[0])
    module.class_counts.index_add_(0, targets, torch.ones_like(targets, dtype=torch.float64))


def max_cosine_to_means(features: Tensor, class_sums: Tensor, class_counts: Tensor) -> Tensor:
    """(B,) the largest cosine between each row of ``features`` (B, M) and a seen class's mean.

    A class's mean has the direction of its sum (C, M); classes never added are skipped.
    """
    sums = F.normalize(class_sums.to(torch.float64), dim=1)  # (C, M)
    cos = F.normalize(features.to(torch.float64), dim=1) @ sums.T  # (B, C)
    return cos.masked_fill(class_counts == 0, float("-inf")).amax(dim=1)


class RidgeStatistics(nn.Module):
    """Sums for a ridge classifier on random ReLU features: G = sum h h^T, per-class sums of h.

    h = ReLU(x P) with x (B, D) unit-normalised (``normalize``) and P (D, M) Gaussian,
    fixed at construction (``seed``; None draws from torch's global RNG). ``solve``
    gives the readout (G + ridge I)^-1 S^T, (M, C), with S (C, M) the class sums.

    Buffers: ``projection`` (D, M) float32; ``gram`` (M, M), ``class_sums`` (C, M) and
    ``class_counts`` (C,) in float64 (sums do not depend on the batching).
    """

    def __init__(self, in_features: int, num_classes: int, dim: int, *, seed: int | None = None,
                 normalize: bool = True) -> None:
        super().__init__()
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        self.normalize = normalize
        self.register_buffer("projection", torch.randn(in_features, dim, generator=gen))
        self.register_buffer("gram", torch.zeros(dim, dim, dtype=torch.float64))
        register_class_sums(self, num_classes, dim)

    def expand(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, M) float64 random features."""
        return random_relu_features(unit_rows(x, self.normalize), self.projection)

    @torch.no_grad()
    def add(self, x: Tensor, targets: Tensor) -> None:
        """Add samples x (B, D) of classes ``targets`` (B,)."""
        h = self.expand(x)  # (B, M)
        self.gram.addmm_(h.T, h)
        add_to_class_sums(self, h, targets)

    @torch.no_grad()
    def class_similarity(self, x: Tensor) -> Tensor:
        """(B,) the largest cosine between the random features of x (B, D) and a class mean's."""
        return max_cosine_to_means(self.expand(x), self.class_sums, self.class_counts)

    def sums(self) -> list[Tensor]:
        """The buffers ``add`` adds to: ``gram``, ``class_sums``, ``class_counts``."""
        return [self.gram, self.class_sums, self.class_counts]

    @torch.no_grad()
    def solve(self, ridge: float) -> Tensor:
        """(M, C) float64 readout; columns of classes never added are zero."""
        return solve_spd(self.gram, self.class_sums.T, ridge)


class StatisticsMethod(ContinualMethod):
    """A method fed by ``observe`` alone (nothing trained by gradient); ``solve`` runs as each experience ends.

    On load, ``solve`` is skipped: the solved tensors come from the saved ones.
    """

    requires_training = False
    runs_on_causal_lm = True  # frozen features only

    @property
    def feature_dim(self) -> int:
        """Width of :meth:`query`: the backbone's query width for ``config.layers`` layers."""
        return self.backbone.query_width(self.config.layers)

    def query(self, inputs: Any) -> Tensor:
        """(B, feature_dim) frozen features of the last ``config.layers`` layers, no gradient."""
        return self.backbone.query_features(inputs, layers=self.config.layers)

    def _grow(self, experience: int, classes: list[int]) -> None:
        pass

    def trainable_parameters(self) -> list[nn.Parameter]:
        return []

    def _freeze(self, experience: int) -> None:
        if not self._restoring:
            self._sum_statistics()
            self.solve()

    def solve(self) -> None:
        """Compute the classifier from the statistics (nothing to do by default)."""
