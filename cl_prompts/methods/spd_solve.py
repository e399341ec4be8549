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

    Cholesky in float64, or for wide float64 systems in float32 refined to float64 accuracy
    (:func:`_refined_solve`); ``ridge`` > 0 makes the system positive definite. On CPU it runs
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


# Systems at least this wide are factorised in float32 and refined (:func:`_refined_solve`);
# below it a float64 factorisation costs under a tenth of a second.
MIXED_PRECISION_MIN_DIM = 2048
# Refinement steps before giving up on the float32 factor: a system that needs more is
# better factorised in float64 at once (each step costs an (M, M) x (M, C) float64 product).
MAX_REFINEMENT_STEPS = 6


def _solve_one(matrix: Tensor, rhs: Tensor, ridge: float) -> Tensor:
    if matrix.device.type == "cpu":
        torch.set_num_threads(1)  # MKL's setting is global; said again in this worker thread
    diagonal = matrix.diagonal()
    saved = diagonal.clone()
    try:
        diagonal.add_(ridge)  # matrix + ridge * I, in place
        if matrix.dtype == torch.float64 and matrix.shape[0] >= MIXED_PRECISION_MIN_DIM:
            refined = _refined_solve(matrix, rhs)
            if refined is not None:
                return refined
        factor, info = torch.linalg.cholesky_ex(matrix)
        if int(info) != 0:  # numerically indefinite (tiny ridge): fall back to a general solve
            return torch.linalg.solve(matrix, rhs).contiguous()
        return torch.cholesky_solve(rhs, factor).contiguous()
    finally:
        diagonal.copy_(saved)  # the matrix as it was, bit for bit


def _refined_solve(matrix: Tensor, rhs: Tensor) -> Tensor | None:
    """matrix^-1 rhs, float64, from a float32 Cholesky factor refined to float32 resolution; or None.

    Mixed-precision iterative refinement (as LAPACK's dsposv): factorise in float32, 2.5x
    faster than float64 here, then add the float32 solve of the float64 residual
    rhs - matrix x. Each step shrinks the error by about cond(matrix) * eps32; it stops once
    the error left (the last correction times that rate) is below float32's resolution of
    every column of x: the readouts are stored and scored in float32, so a float64-exact
    solve would round to the same values up to their last bit. None when the float32 factor
    fails or the corrections stop shrinking (condition number near 1 / eps32): the caller
    factorises in float64. ``matrix`` (M, M) float64 symmetric positive definite, ``rhs`` (M, C).
    """
    factor, info = torch.linalg.cholesky_ex(matrix.to(torch.float32))  # (M, M) float32
    if int(info) != 0:
        return None
    rhs = rhs.to(torch.float64)
    x = torch.cholesky_solve(rhs.to(torch.float32), factor).to(torch.float64)  # (M, C)
    resolution = torch.finfo(torch.float32).eps
    previous = None
    for _ in range(MAX_REFINEMENT_STEPS):
        residual = torch.addmm(rhs, matrix, x, alpha=-1.0)  # (M, C) rhs - matrix x, float64
        correction = torch.cholesky_solve(residual.to(torch.float32), factor).to(torch.float64)
        x += correction
        change = correction.abs().amax(dim=0) / x.abs().amax(dim=0).clamp_min(torch.finfo(torch.float64).tiny)  # (C,)
        if previous is not None and not bool((change < previous / 2).all()):
            return None  # not converging: float32 cannot resolve this system
        rate = change / previous if previous is not None else torch.ones_like(change)
        if bool((change * rate <= resolution).all()):
            return x.contiguous()
        previous = change
    return None


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
