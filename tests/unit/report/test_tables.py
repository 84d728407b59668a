"""The console tables a run prints."""

import io

from rich.console import Console

from curriculum.evaluation import Cell, EvalResult
from curriculum.report.tables import round_table
from curriculum.run.loop import RoundReport


def rendered(table) -> str:
    out = io.StringIO()
    Console(file=out, width=160).print(table)
    return out.getvalue()


def test_a_round_table_names_the_validation_set_where_the_run_has_one():
    evaluation = EvalResult(cells={("add", 1): Cell(10, 9, 50), ("add", 2): Cell(10, 5, 50)})
    plain = RoundReport(2, 2, evaluation, {"eval/accuracy": 0.7}, {"learn": 3.0}, {"teacher": 4})
    text = rendered(round_table(plain))
    assert "round 2  (policy v2)" in text and "teacher 4" in text and "validation" not in text
    metrics = {"validation/accuracy": 0.655, "validation/worst_drop": 7.25}
    validated = RoundReport(2, 2, evaluation, metrics, {"learn": 3.0}, {"teacher": 4})
    text = " ".join(rendered(round_table(validated)).split())  # the caption wraps at the table's width
    assert "validation set: all 65.5%, worst drop from base +7.2 points" in text
