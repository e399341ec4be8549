"""Results of a continual run: metrics from the accuracy matrix, the results JSON, plots, tables.

Light to import: matplotlib is only loaded when a plot is drawn.
"""

from cl_prompts.results.compare import compare_dirs, compare_table, find_results, mean_std
from cl_prompts.results.metrics import (
    as_matrix,
    average_accuracy_curve,
    average_forgetting,
    backward_transfer,
    final_average_accuracy,
    forgetting_per_experience,
    pad_rows,
    summarize,
)
from cl_prompts.results.plots import plot_accuracy_matrix, plot_accuracy_over_time, write_plots
from cl_prompts.results.record import (
    REQUIRED_KEYS,
    RESULTS_FILE,
    TIMING_KEYS,
    atomic_write_text,
    build_results,
    peak_memory_mb,
    read_results,
    strip_timings,
    versions,
    write_results,
)
from cl_prompts.results.summary import summary_table

__all__ = [
    "REQUIRED_KEYS",
    "RESULTS_FILE",
    "TIMING_KEYS",
    "as_matrix",
    "atomic_write_text",
    "average_accuracy_curve",
    "average_forgetting",
    "backward_transfer",
    "build_results",
    "pad_rows",
    "compare_dirs",
    "compare_table",
    "final_average_accuracy",
    "find_results",
    "forgetting_per_experience",
    "mean_std",
    "peak_memory_mb",
    "plot_accuracy_matrix",
    "plot_accuracy_over_time",
    "read_results",
    "strip_timings",
    "summarize",
    "summary_table",
    "versions",
    "write_plots",
    "write_results",
]
