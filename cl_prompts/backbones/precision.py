"""Mixed precision of the frozen backbone: autocast around the encoder, fp32 everywhere else.

Only the transformer's own matmuls run in bf16/fp16. Prompts, keys, heads and the
closed-form statistics stay fp32: the backbone hands back fp32 features, and the
prompts are cast where they enter the model (autocast's rules). ``auto`` picks bf16
where the hardware computes it natively (a CUDA card with bf16, a CPU with AVX512-BF16
or AMX), fp32 elsewhere: bf16 emulated in software is slower than fp32.
"""

from __future__ import annotations

import contextlib
import functools

import torch

from cl_prompts.checks import check_choice
from cl_prompts.choices import PRECISIONS

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (Linux: /proc/cpuinfo flags)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:  # not Linux: no way to tell cheaply, stay exact
        return False
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``auto`` -> "bf16" or "fp32" for ``device``; any other value is returned unchanged."""
    check_choice("precision", precision, PRECISIONS)
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """Autocast to ``precision`` on ``device`` (``auto`` resolved); a no-op for fp32."""
    resolved = resolve_precision(precision, device)
    if resolved == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=DTYPES[resolved])


def grad_scaler(precision: str, device: torch.device | str) -> torch.amp.GradScaler:
    """A loss scaler for fp16 (its small exponent range underflows prompt gradients); disabled otherwise."""
    resolved = resolve_precision(precision, device)
    return torch.amp.GradScaler(torch.device(device).type, enabled=resolved == "fp16")
