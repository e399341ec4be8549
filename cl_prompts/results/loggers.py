"""Live logs of a run for TensorBoard and Weights & Biases: loss per step, accuracy per experience."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cl_prompts.extras import is_available, missing_message
from cl_prompts.safe_io import inside, refuse_symlink

LOGGERS = ("tensorboard", "wandb")
TENSORBOARD_DIR = "tensorboard"
LOG_DIRS = (TENSORBOARD_DIR, "wandb")  # what the loggers write inside a run folder


def check_loggers(names: list[str]) -> None:
    """Refuse unknown loggers and ones whose package is missing, before a run starts."""
    for name in names:
        if name not in LOGGERS:
            raise ValueError(f"unknown logger {name!r}; choose from {list(LOGGERS)}")
        if not is_available(name):
            raise ValueError(missing_message(name, f"--log {name}"))


class RunLoggers:
    """Writes to every logger asked for; a no-op without any.

    Args:
        names: a subset of ``LOGGERS``.
        folder: the run's working folder (TensorBoard events go to ``<folder>/tensorboard``,
            W&B's files to ``<folder>/wandb``).
        config: the run's options (W&B shows them; ``WANDB_MODE=offline`` keeps it local).
        run_name: a label for the run.
    """

    def __init__(self, names: list[str], folder: Path, config: dict[str, Any], run_name: str) -> None:
        check_loggers(names)
        self._tb = self._wandb = None
        for name in names:  # a planted link in a shared run folder would send the logs elsewhere
            logs = Path(folder) / name
            refuse_symlink(logs, f"--log {name} folder")
            inside(logs, folder, f"--log {name} folder")
        if "tensorboard" in names:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(Path(folder) / TENSORBOARD_DIR))
        if "wandb" in names:
            import wandb

            try:
                self._wandb = wandb.init(project="cl_prompts", name=run_name, dir=str(folder), config=config,
                                         reinit="create_new")
            except wandb.errors.Error as exc:  # e.g. no API key: say so in one line
                self.close()
                raise ValueError(f"--log wandb: {exc} (set WANDB_API_KEY, run `wandb login`, or "
                                 "WANDB_MODE=offline to log locally)") from None

    def loss(self, step: int, value: float) -> None:
        """The training loss of global step ``step`` (batches over the whole run)."""
        if self._tb is not None:
            self._tb.add_scalar("train/loss", value, step)
        if self._wandb is not None:
            self._wandb.log({"train/loss": value}, step=step)

    def experience(self, e: int, step: int, accuracy: list[float | None], task_id: list[float | None]) -> None:
        """Accuracy (%) on each seen experience after training experience ``e``."""
        scalars = {f"accuracy/experience_{j}": a for j, a in enumerate(accuracy) if a is not None}
        measured = [a for a in accuracy if a is not None]
        if measured:
            scalars["accuracy/average_seen"] = sum(measured) / len(measured)
        tid = [t for t in task_id if t is not None]
        if tid:
            scalars["task_id_accuracy/average_seen"] = sum(tid) / len(tid)
        scalars["experience"] = e
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
