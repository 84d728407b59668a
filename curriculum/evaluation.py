"""Held-out evaluation: greedy accuracy overall, by family, by level and by family x level."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from curriculum.config import Extraction
from curriculum.models import prompt_for
from curriculum.records import Problem

NO_FAMILY = "-"


class _Grade(Protocol):
    @property
    def extracted(self) -> str | None: ...

    @property
    def correct(self) -> bool: ...


class _Verifier(Protocol):
    def grade_many(
        self, completions: Sequence[str], references: Sequence[str], rule: Extraction
    ) -> Sequence[_Grade]: ...


@dataclass
class Cell:
    """Counts for one (family, level) group."""

    n: int = 0
    correct: int = 0
    tokens: int = 0

    def add(self, other: Cell) -> Cell:
        return Cell(self.n + other.n, self.correct + other.correct, self.tokens + other.tokens)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


@dataclass(frozen=True)
class EvalItem:
    problem_id: str
    family: str
    level: int | None
    completion: str
    extracted: str | None
    correct: bool
    num_tokens: int


@dataclass
class EvalResult:
    """Counts per (family, level); every accuracy is derived from them."""

    cells: dict[tuple[str, int | None], Cell] = field(default_factory=dict)
    items: list[EvalItem] = field(default_factory=list)
    timeouts: int = 0  # grades that ran past the verifier's time limit (counted wrong); set by the Solver

    def _group(self, key_of: Any) -> dict[Any, Cell]:
        groups: dict[Any, Cell] = {}
        for key in sorted(self.cells, key=_sort_key):
            group = key_of(key)
            groups[group] = groups.get(group, Cell()).add(self.cells[key])
        return groups

    @property
    def total(self) -> Cell:
        return self._group(lambda key: None).get(None, Cell())

    @property
    def n(self) -> int:
        return self.total.n

    @property
    def accuracy(self) -> float:
        return self.total.accuracy

    @property
    def mean_tokens(self) -> float:
        total = self.total
        return total.tokens / total.n if total.n else 0.0

    @property
    def by_family(self) -> dict[str, float]:
        return {family: cell.accuracy for family, cell in self._group(lambda key: key[0]).items()}

    @property
    def by_level(self) -> dict[int | None, float]:
        return {level: cell.accuracy for level, cell in self._group(lambda key: key[1]).items()}

    @property
    def by_family_level(self) -> dict[tuple[str, int | None], float]:
        return {key: cell.accuracy for key, cell in self._group(lambda key: key).items()}

    def metrics(self, prefix: str = "eval") -> dict[str, float]:
        """Flat metric names for MLflow: accuracy, mean_tokens, per level and per family."""
        out = {f"{prefix}/accuracy": self.accuracy, f"{prefix}/mean_tokens": self.mean_tokens}
        for level, accuracy in self.by_level.items():
            if level is not None:
                out[f"{prefix}/level_{level}/accuracy"] = accuracy
        for family, accuracy in self.by_family.items():
            if family != NO_FAMILY:
                out[f"{prefix}/{family}/accuracy"] = accuracy
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts (without the per-problem items)."""
        return {
            "cells": [
                {"family": family, "level": level, "n": cell.n, "correct": cell.correct, "tokens": cell.tokens}
                for (family, level), cell in sorted(self.cells.items(), key=lambda kv: _sort_key(kv[0]))
            ]
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        cells = {
            (row["family"], row["level"]): Cell(int(row["n"]), int(row["correct"]), int(row["tokens"]))
            for row in data["cells"]
        }
        return cls(cells=cells)


def _sort_key(key: tuple[str, int | None]) -> tuple[str, int]:
    family, level = key
    return (family, -1 if level is None else level)


def evaluate(
    engine: Any,
    problems: Sequence[Problem],
    verifier: _Verifier,
    rule: Extraction,
    max_new_tokens: int,
    batch_size: int | None = None,
    progress: bool = False,
    instruction: str = "",
) -> EvalResult:
    """Greedy-decode every problem once (its question + `instruction`) and grade it against its reference."""

    if not problems:
        raise ValueError("evaluate() needs at least one problem")
    prompts = [prompt_for(problem.question, engine.tokenizer, instruction) for problem in problems]
    outputs = engine.generate(
        prompts, n=1, temperature=0.0, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress
    )
    completions = [samples[0] for samples in outputs]
    grades = verifier.grade_many([c.text for c in completions], [p.answer for p in problems], rule)
    result = EvalResult()
    for problem, completion, grade in zip(problems, completions, grades, strict=True):
        key = (problem.family or NO_FAMILY, problem.level)
        cell = result.cells.setdefault(key, Cell())
        cell.n += 1
        cell.correct += int(bool(grade.correct))
        cell.tokens += completion.num_tokens
        extracted = None if grade.extracted is None else str(grade.extracted)
        result.items.append(
            EvalItem(
                problem.id,
                key[0],
                problem.level,
                completion.text,
                extracted,
                bool(grade.correct),
                completion.num_tokens,
            )
        )
    return result


def format_accuracy_table(result: EvalResult, title: str | None = None) -> str:
    """Accuracy (%) with families as rows and levels as columns, plus 'all' margins."""
    levels = sorted({level for _, level in result.cells}, key=lambda lv: -1 if lv is None else lv)
    families = sorted({family for family, _ in result.cells})
    by_family_level = result._group(lambda key: key)
    by_family = result._group(lambda key: key[0])
    by_level = result._group(lambda key: key[1])

    def show(cell: Cell | None) -> str:
        return "" if cell is None or cell.n == 0 else f"{100 * cell.accuracy:.0f}"

    header = ["family"] + [f"L{level}" if level is not None else "L?" for level in levels] + ["all"]
    rows = [
        [family] + [show(by_family_level.get((family, level))) for level in levels] + [show(by_family[family])]
        for family in families
    ]
    rows.append(["all"] + [show(by_level[level]) for level in levels] + [show(result.total)])
    widths = [max(len(row[col]) for row in [header] + rows) for col in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))

    out = [title] if title else []
    out.append(line(header))
    out.append("  ".join("-" * width for width in widths))
    out.extend(line(row) for row in rows)
    out.append(f"accuracy % (greedy), n={result.n}, mean tokens {result.mean_tokens:.1f}")
    return "\n".join(out)


def accuracy_groups(evaluation: EvalResult, report_by: str) -> dict[str, float]:
    """Held-out accuracy per difficulty level (L1, L2, ...) or per benchmark (family)."""
    if report_by == "family":
        return dict(evaluation.by_family)
    levels = sorted(evaluation.by_level, key=lambda level: -1 if level is None else level)
    return {f"L{'?' if level is None else level}": evaluation.by_level[level] for level in levels}


WORST_DROP = "retention/worst_drop"


def drops_from_base(
    base: EvalResult, current: EvalResult, report_by: str, prefix: str = "retention"
) -> dict[str, float]:
    """Accuracy points each level (or benchmark) has lost since the base model (negative: gained),
    as `<prefix>/drop/<group>`, and the largest as `<prefix>/worst_drop`."""
    before, now = accuracy_groups(base, report_by), accuracy_groups(current, report_by)
    drops = {name: 100 * (accuracy - now.get(name, 0.0)) for name, accuracy in before.items()}
    return {
        **{f"{prefix}/drop/{name}": drop for name, drop in drops.items()},
        f"{prefix}/worst_drop": max(drops.values(), default=0.0),
    }


def worst_drop_so_far(worst_drops: Iterable[float]) -> dict[str, float]:
    """The largest of the rounds' `retention/worst_drop` so far (empty when none reported one)."""
    drops = list(worst_drops)
    return {"retention/worst_drop_so_far": max(drops)} if drops else {}
