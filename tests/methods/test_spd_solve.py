"""The symmetric positive definite solver of the closed-form readouts."""

import pytest
import torch

from cl_prompts.methods import spd_solve
from cl_prompts.methods.spd_solve import solve_spd, solve_spd_all


def ridge_system(n: int, width: int, classes: int, seed: int, shift: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """A Gram matrix of ReLU features (width, width) and class sums (width, classes), float64.

    A large ``shift`` (a mean shared by all rows) with ``n`` near ``width`` gives condition
    numbers like those of the 10,000-wide readouts (1e5 to 1e6).
    """
    gen = torch.Generator().manual_seed(seed)
    h = torch.relu(torch.randn(n, width, dtype=torch.float64, generator=gen) + shift)
    targets = torch.randint(0, classes, (n,), generator=gen)
    sums = torch.zeros(classes, width, dtype=torch.float64).index_add_(0, targets, h)
    return h.T @ h, sums.T.contiguous()


def float64_solve(gram: torch.Tensor, rhs: torch.Tensor, ridge: float) -> torch.Tensor:
    return torch.cholesky_solve(rhs, torch.linalg.cholesky(gram + ridge * torch.eye(len(gram), dtype=gram.dtype)))


def test_solve_spd_matches_a_dense_solve():
    a = torch.randn(20, 8, dtype=torch.float64)
    gram, rhs = a.T @ a, torch.randn(8, 3, dtype=torch.float64)
    expected = torch.linalg.solve(gram + 0.5 * torch.eye(8, dtype=torch.float64), rhs)
    assert torch.allclose(solve_spd(gram, rhs, 0.5), expected)


def test_systems_solved_side_by_side_give_the_bits_of_one_at_a_time():
    systems = []
    for seed, ridge in ((0, 0.5), (1, 2.0), (2, 1.0)):
        a = torch.randn(300, 200, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        systems.append((a.T @ a, torch.randn(200, 4, dtype=torch.float64), ridge))
    together = solve_spd_all(systems)
    for (gram, rhs, ridge), x in zip(systems, together, strict=True):
        assert torch.equal(x, solve_spd(gram, rhs, ridge))
        assert x.is_contiguous()
    assert solve_spd_all([]) == []


def test_a_solve_leaves_its_matrix_as_it_was_even_when_named_twice():
    a = torch.randn(50, 20, dtype=torch.float64)
    gram, rhs = a.T @ a, torch.randn(20, 2, dtype=torch.float64)
    before = gram.clone()
    twice = solve_spd_all([(gram, rhs, 0.5), (gram, rhs, 2.0)])
    assert torch.equal(gram, before)
    assert torch.equal(twice[0], solve_spd(gram, rhs, 0.5)) and torch.equal(twice[1], solve_spd(gram, rhs, 2.0))
    assert not torch.allclose(twice[0], twice[1])


@pytest.fixture
def mixed_precision(monkeypatch):
    """Every float64 system takes the float32 factor with refinement (the path of wide ones)."""
    monkeypatch.setattr(spd_solve, "MIXED_PRECISION_MIN_DIM", 1)


def test_a_wide_system_is_solved_from_a_float32_factor_beyond_float32_resolution(mixed_precision):
    gram, rhs = ridge_system(320, 300, 5, seed=0, shift=2.0)
    system = gram + torch.eye(300, dtype=gram.dtype)
    assert torch.linalg.cond(system) > 1e5
    exact = float64_solve(gram, rhs, 1.0)
    plain32 = torch.cholesky_solve(rhs.float(), torch.linalg.cholesky(system.float())).double()
    x = solve_spd(gram, rhs, 1.0)
    assert x.dtype == torch.float64 and x.is_contiguous()
    error = ((x - exact).norm() / exact.norm()).item()
    error32 = ((plain32 - exact).norm() / exact.norm()).item()
    assert error32 > 1e-4, "float32 alone should be visibly off on this system"
    assert error < 1e-8, f"refined solve off by {error:.1e} (float32 alone: {error32:.1e})"
    rounding = torch.finfo(torch.float32).eps * exact.abs().max()
    assert (x.float() - exact.float()).abs().max() <= 2 * rounding, "stored in float32, the two differ in rounding only"


def test_the_refined_solve_leaves_its_matrix_as_it_was_and_matches_side_by_side(mixed_precision):
    gram, rhs = ridge_system(600, 300, 5, seed=1)
    before = gram.clone()
    alone = solve_spd(gram, rhs, 1.0)
    assert torch.equal(gram, before)
    together = solve_spd_all([(gram, rhs, 1.0), (gram, rhs, 5.0)])
    assert torch.equal(together[0], alone)


def test_a_system_float32_cannot_resolve_falls_back_to_the_float64_factor(mixed_precision, monkeypatch):
    gram, rhs = ridge_system(150, 300, 5, seed=2)  # rank 150 of 300
    ridge = 1e-6  # condition number far above 1 / eps32
    assert spd_solve._refined_solve(gram + ridge * torch.eye(300, dtype=gram.dtype), rhs) is None
    monkeypatch.setattr(spd_solve, "MIXED_PRECISION_MIN_DIM", 10**9)
    float64_only = solve_spd(gram, rhs, ridge)
    monkeypatch.setattr(spd_solve, "MIXED_PRECISION_MIN_DIM", 1)
    assert torch.equal(solve_spd(gram, rhs, ridge), float64_only)


def test_narrow_systems_keep_the_float64_factor(monkeypatch):
    gram, rhs = ridge_system(100, 40, 3, seed=3)
    called = []
    monkeypatch.setattr(spd_solve, "_refined_solve", lambda *a: called.append(1))
    assert torch.equal(solve_spd(gram, rhs, 1.0), float64_solve(gram, rhs, 1.0))
    assert called == []
