"""Runs: one method over a task sequence, with checkpoints, results and plots (``cl-prompts run``).

- :mod:`~cl_prompts.run.config`: :class:`RunConfig` and ``--config`` files (loads without torch);
- :mod:`~cl_prompts.run.runner`: :func:`run`, which drives a run and writes its results;
- :mod:`~cl_prompts.run.state`: :class:`RunState`, a run's progress, and the runner's other objects;
- :mod:`~cl_prompts.run.loop`: the streams (tokenized text, images), training and evaluation;
- :mod:`~cl_prompts.run.checkpoints`: the checkpoint written after every experience (``--resume``);
- :mod:`~cl_prompts.run.out_dir`: the out folder (lock, ``--overwrite`` staging, clean-up);
- :mod:`~cl_prompts.run.distributed`: data-parallel workers (``torchrun``).

The datasets a run names are loaded by :func:`cl_prompts.data.load_benchmark`. Names are
resolved lazily, so ``from cl_prompts.run import RunConfig`` imports no torch.
"""

from __future__ import annotations

from cl_prompts.lazy import lazy_attributes

_LAZY = {
    "QUICK": "cl_prompts.run.config",
    "RunConfig": "cl_prompts.run.config",
    "RunDirBusyError": "cl_prompts.run.out_dir",
    "RunState": "cl_prompts.run.state",
    "run": "cl_prompts.run.runner",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
