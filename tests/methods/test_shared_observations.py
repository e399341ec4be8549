"""Data-parallel statistics: each rank observes its share of the samples, the sums are totalled at the end.

Two ranks are simulated with threads and an in-memory all-reduce, so the method's side of
``share_observations`` is tested without launching processes (tests/test_distributed.py
runs the real thing under torchrun).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
import torch

from cl_prompts.backbones.testing import tiny_text_backbone
from cl_prompts.methods.ncm.model import NCM

STATISTICS_METHODS = ("ranpac", "slda", "ncm", "growing_pool")


@dataclass
class Board:
    """What the simulated ranks share: a barrier and one slot per rank."""

    world_size: int
    barrier: threading.Barrier = field(init=False)
    slots: list = field(init=False)

    def __post_init__(self):
        self.barrier = threading.Barrier(self.world_size)
        self.slots = [None] * self.world_size


@dataclass
class ThreadRank:
    rank: int
    world_size: int
    board: Board

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum_(self, values: torch.Tensor) -> torch.Tensor:
        self.board.slots[self.rank] = values.clone()
        self.board.barrier.wait()
        total = sum(self.board.slots[1:], self.board.slots[0])  # rank order: the same bits on every rank
        self.board.barrier.wait()
        values.copy_(total)
        return values


GROWTH_LOCK = threading.Lock()


def _feed(model, stream, batch: int = 5) -> None:
    for e, (classes, x, y) in enumerate(stream):
        with GROWTH_LOCK:  # the threads share torch's RNG: each rank draws the same new prompts
            torch.manual_seed(100 + e)
            model.begin_experience(e, classes)
        for _ in range(2):  # a second epoch: growing_pool keeps distinct samples once
            for s in range(0, len(y), batch):
                model.observe({k: v[s : s + batch] for k, v in x.items()}, y[s : s + batch])
        model.end_experience(e)
    model.eval()


def _ranked_models(h, name, backbone, world_size):
    board = Board(world_size)
    models = []
    for r in range(world_size):
        # a backbone per rank (a prompted forward is not thread-safe), with the same weights
        own = tiny_text_backbone(max_length=backbone.config.max_length)
        model = h.build(name, own)  # the same initial tensors on every rank, as a launched run has
        model.share_observations(ThreadRank(r, world_size, board))
        models.append(model)
    return models


@pytest.mark.parametrize("name", STATISTICS_METHODS)
def test_two_ranks_sharing_the_samples_equal_one_process(name, backbone, stream, h):
    torch.manual_seed(0)
    single = h.build(name, backbone)
    _feed(single, stream)
    models = _ranked_models(h, name, backbone, 2)
    shares, errors = [], []

    def run(model):
        original = model._observed_rows

        def counting(inputs, targets):
            kept = original(inputs, targets)
            shares.append((model._ranks.rank, len(kept[1]), len(targets)))
            return kept

        model._observed_rows = counting
        try:
            _feed(model, stream)
        except BaseException as exc:  # the other rank must not wait for this one
            errors.append(exc)
            model._ranks.board.barrier.abort()

    threads = [threading.Thread(target=run, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a rank is stuck in the simulated all-reduce"
    assert not errors, errors
    per_rank = [sum(k for r, k, _ in shares if r == rank) for rank in (0, 1)]
    assert 0 < per_rank[0] < sum(per_rank) and 0 < per_rank[1] < sum(per_rank)  # each rank saw a part
    assert sum(per_rank) == sum(n for r, _, n in shares if r == 0)  # and together every row once
    x = {k: torch.cat([exp[1][k] for exp in stream]) for k in stream[0][1]}
    expected = single(x)
    for model in models:
        for a, b in zip(single.statistics(), model.statistics(), strict=True):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)  # the totals, on every rank
        assert torch.allclose(model(x), expected, rtol=1e-4, atol=1e-4)
        assert torch.equal(model(x).argmax(1), expected.argmax(1))


def test_a_sample_always_goes_to_the_same_rank(h, backbone, stream):
    board = Board(3)
    models = [h.build("ranpac", backbone) for _ in range(3)]
    for r, m in enumerate(models):
        m.share_observations(ThreadRank(r, 3, board))
    _, x, y = stream[0]
    doubled = {k: torch.cat([v, v.flip(0)]) for k, v in x.items()}  # every row twice, another position
    owners = {}
    for r, m in enumerate(models):
        kept, _ = m._observed_rows(doubled, torch.cat([y, y.flip(0)]))
        for row in kept["input_ids"].tolist():
            owners.setdefault(tuple(row), set()).add(r)
    assert len(owners) == len({tuple(r) for r in x["input_ids"].tolist()})  # every distinct row kept
    assert all(len(ranks) == 1 for ranks in owners.values())  # by exactly one rank


def test_a_single_rank_share_is_everything(h, backbone, stream):
    model = h.build("ncm", backbone)
    model.share_observations(ThreadRank(0, 1, Board(1)))
    assert model._ranks is None  # one process: nothing to share
    _, x, y = stream[0]
    kept, targets = model._observed_rows(x, y)
    assert kept is x and targets is y


def test_a_method_that_solves_without_summing_is_refused(h, backbone, stream):
    class Forgetful(NCM):
        def _freeze(self, experience):
            self.solve()  # never calls _sum_statistics

    model = Forgetful(backbone, 6, h.build("ncm", backbone).config)
    model.share_observations(ThreadRank(0, 2, Board(2)))
    classes, x, y = stream[0]
    model.begin_experience(0, classes)
    with pytest.raises(RuntimeError, match="must call self._sum_statistics"):
        model.end_experience(0)
