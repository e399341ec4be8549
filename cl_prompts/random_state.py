"""Global random state: seeding, running code without consuming the global RNGs, and
CPU math that gives the same bits with any number of threads.

The bottom of the package (python, numpy and torch only), so that the run loop and the
Avalanche integration share it without importing each other.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) global RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def thread_independent_math() -> None:
    """Ask MKL for results that do not depend on the thread count (``MKL_CBWR=AUTO,STRICT``).

    MKL otherwise picks its matrix-product kernels by thread count, so a run with
    ``OMP_NUM_THREADS=1`` and one with 2 threads differ in the last bits, and training
    amplifies that into other predictions. MKL reads the setting at its first matrix
    product: call this before any (the runner does, first thing). A value the user set
    is kept. Costs a few per cent of a training step (docs/reproducibility.md).
    """
    os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")


def _cuda_in_use(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


@dataclass
class RngState:
    """A snapshot of the python, numpy, torch CPU and (when used) CUDA global RNGs."""

    python: Any
    numpy: Any
    torch_cpu: torch.Tensor
    cuda: list[torch.Tensor] | None

    @classmethod
    def capture(cls, device: str | torch.device = "cpu") -> RngState:
        cuda = torch.cuda.get_rng_state_all() if _cuda_in_use(device) else None
        return cls(random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda)

    def restore(self) -> None:
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        torch.set_rng_state(self.torch_cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


@contextlib.contextmanager
def isolated_rng(device: str | torch.device = "cpu") -> Iterator[None]:
    """Run a block without consuming the global RNGs (python, numpy, torch, CUDA).

    Evaluation and user callbacks draw random numbers (every DataLoader does); isolating
    them keeps training identical however much is evaluated, and keeps a resumed run
    equal to an uninterrupted one.
    """
    state = RngState.capture(device)
    try:
        yield
    finally:
        state.restore()
