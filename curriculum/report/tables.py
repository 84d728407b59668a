"""The tables `curriculum run` prints: held-out accuracy per group of the base model, of each round,
and base vs final (rich tables; the same numbers are in results.json and MLflow)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from curriculum.evaluation import EvalResult, accuracy_groups

if TYPE_CHECKING:
    from rich.table import Table


class RoundReport(Protocol):
    """What a round reports (run/loop.py's RoundReport)."""

    round: int
    policy_version: int
    evaluation: EvalResult
    metrics: dict[str, float]
    seconds: dict[str, float]
    problems_by_source: dict[str, int]


def accuracy_table(evaluation: EvalResult, report_by: str, title: str) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    groups = accuracy_groups(evaluation, report_by)
    for name in groups:
        table.add_column(name, justify="right")
    table.add_column("all", justify="right")
    table.add_row(*[f"{100 * value:.1f}" for value in groups.values()], f"{100 * evaluation.accuracy:.1f}")
    return table


def round_table(report: RoundReport, report_by: str = "level") -> Table:
    from rich.table import Table

    table = Table(title=f"round {report.round}  (policy v{report.policy_version})", title_justify="left")
    groups = accuracy_groups(report.evaluation, report_by)
    for name in groups:
        table.add_column(name, justify="right")
    table.add_column("all", justify="right")
    table.add_column("added", justify="left")
    table.add_column("seconds", justify="left")
    added = ", ".join(f"{k} {v}" for k, v in sorted(report.problems_by_source.items())) or "-"
    seconds = ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items())
    table.add_row(
        *[f"{100 * value:.0f}" for value in groups.values()], f"{100 * report.evaluation.accuracy:.0f}", added, seconds
    )
    if "validation/accuracy" in report.metrics:  # a validation set (world.validation_per_level / validation_size)
        worst = report.metrics.get("validation/worst_drop")
        table.caption = f"validation set: all {100 * report.metrics['validation/accuracy']:.1f}%" + (
            "" if worst is None else f", worst drop from base {worst:+.1f} points"
        )
        table.caption_justify = "left"
    return table


def comparison_table(base: EvalResult, final: EvalResult, report_by: str = "level") -> Table:
    from rich.table import Table

    table = Table(title="held-out accuracy %: base model vs final policy", title_justify="left")
    table.add_column("level" if report_by == "level" else "benchmark")
    table.add_column("base", justify="right")
    table.add_column("final", justify="right")
    table.add_column("change", justify="right")
    finals = accuracy_groups(final, report_by)
    for name, value in accuracy_groups(base, report_by).items():
        b, f = 100 * value, 100 * finals.get(name, 0.0)
        table.add_row(name, f"{b:.1f}", f"{f:.1f}", f"{f - b:+.1f}")
    table.add_row(
        "all",
        f"{100 * base.accuracy:.1f}",
        f"{100 * final.accuracy:.1f}",
        f"{100 * (final.accuracy - base.accuracy):+.1f}",
    )
    return table
