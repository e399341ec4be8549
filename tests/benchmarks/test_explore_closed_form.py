"""benchmarks/explore_closed_form.py: its classifiers are the library's, fitted at once."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cl_prompts.methods.closed_form import RidgeStatistics


@pytest.fixture(scope="module")
def explore(benchmark_script):
    return benchmark_script("explore_closed_form")


def _data(n=60, d=12, c=4):
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(n) % c
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) + 2 * F.one_hot(y, d).double()
    return x, y


def test_ranpac_logits_equal_the_library_ridge_statistics(explore):
    x, y = _data()
    logits = explore.ranpac_logits(x[:40], y[:40], x[40:], 32, [1.0, 10.0], seed=3, num_classes=4)
    for ridge, got in zip([1.0, 10.0], logits, strict=True):
        stats = RidgeStatistics(12, 4, 32, seed=3)
        stats.add(x[:40], y[:40])
        want = stats.expand(x[40:]) @ stats.solve(ridge)
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_slda_logits_are_the_shared_covariance_discriminant(explore):
    x, y = _data()
    xn = F.normalize(x, dim=1)
    means = torch.stack([xn[y == k].mean(0) for k in range(4)])
    cov = (xn - means[y]).T @ (xn - means[y]) / len(y)
    w = torch.linalg.solve(0.5 * cov + 0.5 * torch.eye(12, dtype=torch.float64), means.T)
    want = xn @ w - 0.5 * (means * w.T).sum(1)
    torch.testing.assert_close(explore.slda_logits(x, y, x, 0.5, 4), want, rtol=1e-9, atol=1e-9)


def test_final_average_accuracy_is_the_mean_over_experiences(explore):
    y = torch.tensor([0, 0, 1, 2, 2, 2])
    logits = F.one_hot(torch.tensor([0, 1, 1, 2, 0, 0]), 3).double()  # exp [0,1]: 2/3 right; exp [2]: 1/3
    assert explore.final_average_accuracy(logits, y, [[0, 1], [2]]) == pytest.approx(50.0)
    feats = torch.randn(5, 6, 8)
    q = explore.query(feats, 4)
    assert q.shape == (5, 32) and torch.allclose(q[:, :8].norm(dim=1), torch.ones(5, dtype=torch.float64))
