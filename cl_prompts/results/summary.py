"""The human-readable summary of one run (printed at the end and saved as summary.md)."""

from __future__ import annotations

from typing import Any


def summary_table(results: dict[str, Any]) -> str:
    """Markdown summary of one run: per-experience accuracies, then the headline metrics."""
    m = results["accuracy_matrix"]
    tid = results.get("task_id_accuracy_matrix")
    lines = [f"## {results['method']} on {results['benchmark']} (seed {results['seed']})", "",
             "| experience | acc just after training | final acc | task-id acc (final) |",
             "|---|---|---|---|"]
    def fmt(v, digits=2):
        return "-" if v is None else f"{v:.{digits}f}"

    for j in range(len(m)):  # m[j][j] is None when the run did not evaluate after experience j
        t = tid[-1][j] if tid else None
        lines.append(f"| {j} | {fmt(m[j][j], 1)} | {fmt(m[-1][j], 1)} | {fmt(t, 1)} |")

    lines += ["", f"final average accuracy: {fmt(results['final_average_accuracy'])} %",
              f"average forgetting: {fmt(results['average_forgetting'])} points",
              f"backward transfer: {fmt(results['backward_transfer'])} points",
              f"train time: {results['train_seconds']:.1f} s "
              f"({results['train_samples_per_second']:.1f} samples/s), eval {results['eval_seconds']:.1f} s",
              f"peak memory: {results['peak_memory_mb']:.0f} MiB ({results['peak_memory_source']})"]
    if "final_task_id_accuracy" in results:
        lines.append(f"task-identification accuracy (final): {fmt(results['final_task_id_accuracy'])} %")
    return "\n".join(lines) + "\n"
