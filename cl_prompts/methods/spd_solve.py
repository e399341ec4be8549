"""Symmetric positive definite solves for the closed-form readouts: (matrix + ridge I)^-1 rhs.

Each system is factorised on one thread (LAPACK's blocked factorisation gives other bits
with other thread counts: docs/reproducibility.md); independent systems run side by side.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor


def solve_spd(matrix: Tensor, rhs: Tensor, ridge: float) -> Tensor:
    """(matrix + ridge * I)^-1 rhs for a symmetric positive semi-definite (M, M) ``matrix``.

    Cholesky in float64; ``ridge`` > 0 makes the system positive definite. On CPU it runs
    on one thread: LAPACK's blocked factorisation gives other bits with other thread counts
    (docs/reproducibility.md); :func:`solve_spd_all` puts independent systems on the other
    cores instead. The result is contiguous: a solve of a transposed ``rhs`` comes back
    column-major, and a matmul reads the two layouts with different kernels (other last
    bits than the loaded copy).
    """
    return solve_spd_all([(matrix, rhs, ridge)])[0]


def solve_spd_all(systems: Sequence[tuple[Tensor, Tensor, float]]) -> list[Tensor]:
    """:func:`solve_spd` of each ``(matrix, rhs, ridge)``, on CPU side by side.

    Each system is factorised on one thread, as alone, so the bits do not depend on how
    many run at once; up to ``torch.get_num_threads()`` of them run together. The ridge is
    added to a matrix's diagonal in place and the saved diagonal put back after the
    factorisation (no (M, M) copy); a matrix named twice is copied for its later systems.
    """
    if not systems:
        return []
    device = systems[0][0].device
    workers = min(len(systems), torch.get_num_threads()) if device.type == "cpu" else 1
    seen: set[int] = set()
    jobs = []
    for matrix, rhs, ridge in systems:
        jobs.append((matrix if id(matrix) not in seen else matrix.clone(), rhs, ridge))
        seen.add(id(matrix))
    with one_thread(device):
        if workers == 1:
            return [_solve_one(*job) for job in jobs]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda job: _solve_one(*job), jobs))


def _solve_one(matrix: Tensor, rhs: Tensor, ridge: float) -> Tensor:
    if matrix.device.type == "cpu":
        torch.set_num_threads(1)  # MKL's setting is global; said again in this worker thread
    diagonal = matrix.diagonal()
    saved = diagonal.clone()
    try:
        diagonal.add_(ridge)  # matrix + ridge * I, in place
        factor, info = torch.linalg.cholesky_ex(matrix)
        if int(info) != 0:  # numerically indefinite (tiny ridge): fall back to a general solve
            return torch.linalg.solve(matrix, rhs).contiguous()
        return torch.cholesky_solve(rhs, factor).contiguous()
    finally:
        diagonal.copy_(saved)  # the matrix as it was, bit for bit


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
