"""A growing per-task pool with many keys per task: the design cl_prompts is named for."""
