"""What the runner carries from step to step, as three objects.

- :class:`RunState`: the run's progress, what every checkpoint saves and ``--resume`` reads back;
- :class:`RunSetup`: the run's inputs and folders, fixed once the folder is taken;
- :class:`ActiveRun`: a run under way: its setup, stream, model, state and loggers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cl_prompts.results.loggers import RunLoggers
    from cl_prompts.run.config import RunConfig
    from cl_prompts.run.distributed import Workers
    from cl_prompts.run.loop import ImageStream, TokenizedStream

Row = list  # one value per experience seen so far: float, or None where it was not evaluated


@dataclass
class RunState:
    """Where a run is and what it has measured so far.

    accuracy / task_id: one row per trained experience (row e holds e + 1 values, the
        accuracies (%) on experiences 0..e; None where the row was not evaluated).
    train_seconds / eval_seconds: one per trained experience.
    resumed_at: the experience each resume started from; world_sizes: the processes of
        each start (a resumed run may run on another number).
    calibration: the out-of-scope threshold and temperature fitted after the last
        experience (None: the dataset holds no calibration data).
    final_subsample: with ``RunConfig.eval_subsample``, the accuracies (%) after the last
        experience on the per-class subsample the earlier rows scored (None: not measured).
    """

    next_experience: int = 0
    accuracy: list[Row] = field(default_factory=list)
    task_id: list[Row] = field(default_factory=list)
    train_seconds: list[float] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
    train_samples: int = 0
    train_steps: int = 0
    resumed_at: list[int] = field(default_factory=list)
    world_sizes: list[int] = field(default_factory=list)
    peak_memory_mb: float = 0.0
    calibration: dict[str, Any] | None = None
    final_subsample: Row | None = None

    # a checkpoint must hold these to be resumed; the others were added later and default
    REQUIRED = ("next_experience", "accuracy", "task_id", "train_seconds", "eval_seconds", "train_samples")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy (the ``state`` of a checkpoint's ``state.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> RunState:
        """A state from a checkpoint (checked there by :func:`cl_prompts.run.checkpoints.check_state`);
        keys of a newer version are refused by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(saved) - known)
        if unknown:
            raise ValueError(f"checkpoint state holds unknown entries {unknown}; it was written by a newer cl_prompts")
        return cls(**saved)

    def record(self, accuracy: Row, task_id: Row, train_seconds: float, eval_seconds: float) -> None:
        """Append the rows and timings of the experience just trained."""
        assert len(accuracy) == len(task_id) == self.next_experience + 1, "one value per experience seen"
        self.accuracy.append(accuracy)
        self.task_id.append(task_id)
        self.train_seconds.append(train_seconds)
        self.eval_seconds.append(eval_seconds)
        self.next_experience += 1


@dataclass
class RunSetup:
    """What :func:`run` hands over once the folder is taken: the run's inputs and where it writes."""

    config: RunConfig
    dataset: Any  # TextDataset or ImageDataset, already cut to the run's subset
    backbone: Any  # a PromptedBackbone, or None: loaded from config.backbone
    out: Path  # the run folder (its name names the run)
    work: Path  # where the run writes: out, or the staging folder of an overwrite
    workers: Workers
    on_experience_end: Callable[[int, RunState], None] | None = None


@dataclass
class ActiveRun:
    """A run under way: its setup, the stream and model it trains, and its progress."""

    setup: RunSetup
    stream: TokenizedStream | ImageStream
    model: Any  # a cl_prompts method (torch.nn.Module)
    state: RunState
    identity: dict[str, Any]  # what a resumed checkpoint must match
    loggers: RunLoggers

    @property
    def config(self) -> RunConfig:
        return self.setup.config
