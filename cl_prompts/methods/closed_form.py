"""Pieces of the closed-form classifiers (``ranpac``, ``slda``): exact, order-free statistics.

Both methods only accumulate sums over the samples they observe (per-class sums, one
Gram or scatter matrix) in float64 and solve a linear system when an experience ends.
Sums do not depend on the order or batching of the data, so the classifier after any
sequence of experiences equals the one solved on all their data at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cl_prompts.methods.base import ContinualMethod
from cl_prompts.methods.spd_solve import solve_spd, solve_spd_all


def unit_rows(x: Tensor, normalize: bool) -> Tensor:
    """(B, D) float64 features, unit-normalised per row when ``normalize``."""
    x = x.to(torch.float64)
    return F.normalize(x, dim=1) if normalize else x


def random_relu_features(x: Tensor, projection: Tensor) -> Tensor:
    """RanPAC's expansion: ReLU(x @ projection); x (B, D), projection (D, M) -> (B, M) float64."""
    return torch.relu(x.to(torch.float64) @ projection.to(torch.float64))


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


# Columns per block of the Gram update: ``add`` computes the blocks on and above the diagonal
# only, 5/8 of the products at 4 blocks (M = 10,000); narrower blocks multiply less efficiently.
GRAM_BLOCK = 2500


def gram_blocks(dim: int) -> list[slice]:
    """Column ranges of an (dim, dim) Gram matrix, each about ``GRAM_BLOCK`` wide."""
    n = max(1, round(dim / GRAM_BLOCK))
    edges = [round(i * dim / n) for i in range(n + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def pack_upper(matrix: Tensor) -> Tensor:
    """(M, M) -> (M (M + 1) / 2,): the upper triangle, row by row."""
    m = matrix.shape[0]
    out = matrix.new_empty(m * (m + 1) // 2)
    start = 0
    for i in range(m):
        out[start:start + m - i] = matrix[i, i:]
        start += m - i
    return out


def unpack_upper(packed: Tensor, m: int, blocks: Sequence[slice] | None = None) -> Tensor:
    """Inverse of :func:`pack_upper`: the symmetric (M, M) matrix, mirrored block by block."""
    if packed.shape != (m * (m + 1) // 2,):
        raise ValueError(f"a packed {m} x {m} triangle has {m * (m + 1) // 2} values, got shape {tuple(packed.shape)}")
    out = packed.new_empty(m, m)
    start = 0
    for i in range(m):
        out[i, i:] = packed[start:start + m - i]
        start += m - i
    return mirror_upper(out, blocks or gram_blocks(m))


def mirror_upper(matrix: Tensor, blocks: Sequence[slice]) -> Tensor:
    """Copy the upper triangle of the (M, M) ``matrix`` onto its lower one, in place, block by block."""
    for i, rows in enumerate(blocks):
        diagonal = matrix[rows, rows]
        diagonal.copy_(torch.triu(diagonal) + torch.triu(diagonal, 1).T)
        for cols in blocks[i + 1:]:
            matrix[cols, rows].copy_(matrix[rows, cols].T)
    return matrix


class RidgeStatistics(nn.Module):
    """Sums for a ridge classifier on random ReLU features: G = sum h h^T, per-class sums of h.

    h = ReLU(x P) with x (B, D) unit-normalised (``normalize``) and P (D, M) Gaussian,
    fixed at construction (``seed``; None draws from torch's global RNG). ``solve``
    gives the readout (G + ridge I)^-1 S^T, (M, C), with S (C, M) the class sums.

    Buffers: ``projection`` (D, M) float32; ``gram`` (M, M), ``class_sums`` (C, M) and
    ``class_counts`` (C,) in float64 (sums do not depend on the batching). ``add`` updates
    the blocks of the symmetric ``gram`` on and above the diagonal; ``sums``, ``system`` and
    ``state_dict`` copy them onto the lower ones first. The state dict holds ``gram_upper``,
    its upper triangle row by row (M (M + 1) / 2,): half the bytes of a checkpoint.
    """

    def __init__(self, in_features: int, num_classes: int, dim: int, *, seed: int | None = None,
                 normalize: bool = True) -> None:
        super().__init__()
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        self.normalize = normalize
        self.register_buffer("projection", torch.randn(in_features, dim, generator=gen))
        self.register_buffer("gram", torch.zeros(dim, dim, dtype=torch.float64))
        register_class_sums(self, num_classes, dim)
        self._blocks = gram_blocks(dim)
        self._lower_stale = False  # ``add`` updates the upper blocks; read through ``_symmetric``
        self.register_state_dict_pre_hook(lambda module, *_: module._symmetric())

    def expand(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, M) float64 random features: what the statistics add up."""
        return random_relu_features(unit_rows(x, self.normalize), self.projection)

    def expand_for_scoring(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, M) float32 random features, to score against a float32 readout.

        The projection in float32 (half the time of float64): the logits differ from those of
        ``expand(x).float()`` by float32 rounding only.
        """
        return torch.relu(unit_rows(x, self.normalize).float() @ self.projection.float())

    @torch.no_grad()
    def add(self, x: Tensor, targets: Tensor) -> None:
        """Add samples x (B, D) of classes ``targets`` (B,)."""
        h = self.expand(x)  # (B, M)
        for i, rows in enumerate(self._blocks):  # G is symmetric: the blocks on and above the diagonal
            for cols in self._blocks[i:]:
                self.gram[rows, cols].addmm_(h[:, rows].T, h[:, cols])
        self._lower_stale = True
        add_to_class_sums(self, h, targets)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "gram_upper"] = pack_upper(destination.pop(prefix + "gram"))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        packed = state_dict.pop(prefix + "gram_upper", None)  # torch hands each module a copy
        if packed is not None:
            state_dict[prefix + "gram"] = unpack_upper(packed, self.gram.shape[0], self._blocks)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._lower_stale = False

    def _symmetric(self) -> None:
        """Make ``gram`` exactly symmetric from its upper triangle, if ``add`` changed it (a product
        h^T h is not always symmetric to the last bit; the saved upper triangle is what counts)."""
        if self._lower_stale:
            mirror_upper(self.gram, self._blocks)
            self._lower_stale = False

    @torch.no_grad()
    def class_similarity(self, x: Tensor) -> Tensor:
        """(B,) the largest cosine between the random features of x (B, D) and a class mean's."""
        return max_cosine_to_means(self.expand_for_scoring(x), self.class_sums, self.class_counts)

    def sums(self) -> list[Tensor]:
        """The buffers ``add`` adds to: ``gram``, ``class_sums``, ``class_counts``."""
        self._symmetric()
        return [self.gram, self.class_sums, self.class_counts]

    def system(self, ridge: float) -> tuple[Tensor, Tensor, float]:
        """The ridge system ``(G, S^T, ridge)`` that :meth:`solve` solves (for :func:`solve_spd_all`)."""
        self._symmetric()
        return self.gram, self.class_sums.T, ridge

    @torch.no_grad()
    def solve(self, ridge: float) -> Tensor:
        """(M, C) float64 readout; columns of classes never added are zero."""
        return solve_spd(*self.system(ridge))


def solve_ridges(pairs: Sequence[tuple[RidgeStatistics, float]]) -> list[Tensor]:
    """:meth:`RidgeStatistics.solve` of each ``(statistics, ridge)``, side by side (:func:`solve_spd_all`)."""
    with torch.no_grad():
        return solve_spd_all([stats.system(ridge) for stats, ridge in pairs])


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

    def frozen_query_layers(self) -> int:
        return self.config.layers

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
