"""Look inside a trained method: which prompts it picks, what they resemble, where its keys lie.

Functions return data (numpy arrays, dataclasses); ``plot_*`` helpers take that data and an
optional matplotlib ``ax`` and return the axes. See docs/analysis.md and
notebooks/03_inside_the_prompts.ipynb.
"""

from cl_prompts.analysis.keys import key_map
from cl_prompts.analysis.plots import plot_key_map, plot_prompt_usage, plot_task_identification
from cl_prompts.analysis.routing import (
    RoutingRecord,
    collect_routing,
    prompt_usage,
    task_identification,
)
from cl_prompts.analysis.tokens import PromptTokens, nearest_tokens

__all__ = [
    "PromptTokens",
    "RoutingRecord",
    "collect_routing",
    "key_map",
    "nearest_tokens",
    "plot_key_map",
    "plot_prompt_usage",
    "plot_task_identification",
    "prompt_usage",
    "task_identification",
]
