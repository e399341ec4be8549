"""What every optimizer step of a gradient-trained method does after the backward pass.

The runner, :class:`~cl_prompts.integrations.PromptStrategy` and
:class:`~cl_prompts.integrations.PromptPoolPlugin` (``optimizer="method"``) all step the
same way: the total gradient norm of the method's trainable tensors clipped to
``config.grad_clip`` (unscaled first when fp16 scales the loss), the optimizer step, then
one step of the experience's learning-rate schedule ``config.lr_schedule``. The optimizer
and its schedule are rebuilt for every experience (new tensors, fresh state).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

LR_SCHEDULES = ("constant", "cosine")


def make_lr_schedule(optimizer: torch.optim.Optimizer | None, config: Any, steps: int) -> LRScheduler | None:
    """The schedule of one experience of ``steps`` optimizer steps (None: constant lr).

    ``"cosine"`` decays every group's lr from its own value to 0 along half a cosine, one
    step of it per optimizer step (CODA-Prompt's code decays per epoch, which with one
    epoch per experience would keep the lr constant).
    """
    if optimizer is None or getattr(config, "lr_schedule", "constant") == "constant":
        return None
    if steps < 1:
        raise ValueError(f"an lr schedule needs at least one step per experience, got {steps}")
    return CosineAnnealingLR(optimizer, T_max=steps)


def clip_gradients(params: list[torch.nn.Parameter], config: Any, optimizer: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler | None = None) -> None:
    """Clip the total L2 norm of ``params``' gradients to ``config.grad_clip`` (None: nothing).

    Under fp16 the gradients are unscaled first, so the threshold is in true units;
    ``scaler.step`` then does not unscale them again.
    """
    max_norm = getattr(config, "grad_clip", None)
    if max_norm is None:
        return
    if scaler is not None:
        scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(params, max_norm)


def optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, params: list[torch.nn.Parameter],
                   config: Any, schedule: LRScheduler | None = None) -> None:
    """Clip, step (through ``scaler``: a no-op wrapper unless fp16), advance the schedule."""
    clip_gradients(params, config, optimizer, scaler)
    scaler.step(optimizer)
    scaler.update()
    if schedule is not None:
        schedule.step()
