"""Runs: one method over a task sequence, with checkpoints, results and plots (``cl-prompts run``).

- :mod:`~cl_prompts.run.config`: :class:`RunConfig` and the dataset it names (loads without torch);
- :mod:`~cl_prompts.run.runner`: :func:`run`, which drives a run and writes its results;
- :mod:`~cl_prompts.run.loop`: the streams (tokenized text, images), training and evaluation;
- :mod:`~cl_prompts.run.checkpoints`: the checkpoint written after every experience (``--resume``);
- :mod:`~cl_prompts.run.out_dir`: the out folder (lock, ``--overwrite`` staging, clean-up).

Names are resolved lazily, so ``from cl_prompts.run import RunConfig`` imports no torch.
"""

from __future__ import annotations

from cl_prompts.lazy import lazy_attributes

_LAZY = {
    "RunConfig": "cl_prompts.run.config",
    "load_dataset": "cl_prompts.run.config",
    "run": "cl_prompts.run.runner",
    "RunDirBusyError": "cl_prompts.run.out_dir",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
