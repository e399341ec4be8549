"""The symmetric positive definite solver of the closed-form readouts."""

import torch

from cl_prompts.methods.spd_solve import solve_spd, solve_spd_all


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
