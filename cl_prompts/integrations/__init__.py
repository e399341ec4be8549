"""Bridges to outside frameworks; only this package imports avalanche (see avalanche.py)."""

from cl_prompts.extras import require

require("avalanche", "cl_prompts.integrations (Avalanche streams, plugin and strategy)")
