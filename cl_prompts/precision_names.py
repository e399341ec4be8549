"""The precisions a backbone can run in; importable without torch (the CLI's and RunConfig's checks).

fp32: exact. bf16 / fp16: autocast around the frozen encoder only (prompts, keys, heads
and closed-form statistics stay fp32). auto: bf16 where the device computes it natively,
else fp32 (:func:`cl_prompts.backbones.precision.resolve_precision`).
"""

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
