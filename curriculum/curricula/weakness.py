"""SwS weakness mining: which concepts the Solver fails, and how the synthesis budget is split.

A weakness (SwS) is a problem whose best accuracy over its last `weakness.window` attempted
rounds stays below `weakness.threshold` while its accuracy trends down (negative least-squares
slope, at least `weakness.min_rounds` rounds). The rule is SQL (`WEAKNESS_SQL`) that the store runs
(`Store.select_ids`) over the accuracy per problem and round it derives from the stored attempts,
so the history is part of the run's store and survives a resume with it.

Concepts of the weaknesses are aggregated here: a concept's failure ratio is its weak problems
over its tracked problems (those with any accuracy history), and the synthesis budget per
concept is proportional to that ratio (SwS).

When the strict rule finds nothing (early rounds, or a Solver that is improving everywhere),
the problems still failing (best accuracy in the window below the threshold, whatever the
slope) are the targets instead; when nothing fails, there is nothing to aim at (`basis` says
which applied).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from curriculum.config import WeaknessConfig
from curriculum.records import Problem
from curriculum.store.queries import StoreQueries, StoreReader

Basis = Literal["weakness", "failing", "none"]


def concept_of(problem: Problem) -> str:
    """A problem's concept: its main skill tag (`add.carry`, `sub.borrow`, ...), else its family."""
    if problem.concepts:
        return problem.concepts[0]
    return problem.family or "unknown"


def recent_best(history: Mapping[int, float], window: int) -> float:
    """Best accuracy over the last `window` rounds of one problem's {round: accuracy}."""
    rounds = sorted(history)[-window:]
    return max(history[r] for r in rounds)


def failing_ids(history: Mapping[str, Mapping[int, float]], threshold: float, window: int) -> list[str]:
    """Problems whose best accuracy over their last `window` rounds is below `threshold`."""
    return sorted(pid for pid, rounds in history.items() if rounds and recent_best(rounds, window) < threshold)


def failure_ratios(tracked: Iterable[Problem], target_ids: Iterable[str]) -> dict[str, float]:
    """Per concept of the tracked problems: the share of them that are targets (weak or failing)."""
    targets = set(target_ids)
    total: Counter[str] = Counter()
    weak: Counter[str] = Counter()
    for problem in tracked:
        concept = concept_of(problem)
        total[concept] += 1
        weak[concept] += problem.id in targets
    return {concept: weak[concept] / total[concept] for concept in sorted(total)}


def allocate_budget(ratios: Mapping[str, float], budget: int) -> dict[str, int]:
    """Split `budget` drafts over concepts in proportion to their failure ratios.

    Largest-remainder rounding, so the parts add up to `budget` exactly; ties go to the higher
    ratio, then the concept name. Concepts with ratio 0 get nothing; all 0: nothing to split.
    """
    positive = {c: r for c, r in ratios.items() if r > 0}
    if budget <= 0 or not positive:
        return {}
    total = sum(positive.values())
    quotas = {c: budget * r / total for c, r in positive.items()}
    shares = {c: int(q) for c, q in quotas.items()}
    leftover = budget - sum(shares.values())
    for concept in sorted(positive, key=lambda c: (-(quotas[c] - shares[c]), -positive[c], c))[:leftover]:
        shares[concept] += 1
    return {c: n for c, n in sorted(shares.items()) if n}


@dataclass(frozen=True)
class WeaknessReport:
    """What the synthesis of a round aims at."""

    basis: Basis
    targets: list[Problem]  # weak (or failing) problems, most telling first
    failure_ratio: dict[str, float] = field(default_factory=dict)  # per tracked concept
    tracked: list[Problem] = field(default_factory=list)  # problems with an accuracy history

    def metrics(self, prefix: str = "weakness") -> dict[str, float]:
        out = {
            f"{prefix}/targets": float(len(self.targets)),
            f"{prefix}/tracked": float(len(self.tracked)),
            f"{prefix}/basis_weakness": float(self.basis == "weakness"),
            f"{prefix}/basis_failing": float(self.basis == "failing"),
        }
        out.update({f"{prefix}/failure_ratio/{c}": r for c, r in self.failure_ratio.items()})
        return out


def weakness_report(
    tracked: Sequence[Problem],
    history: Mapping[str, Mapping[int, float]],
    weak: Sequence[Problem],
    threshold: float,
    window: int,
) -> WeaknessReport:
    """Targets and failure ratios from the store's weaknesses (`weak`, SwS rule) or, when there are
    none, from the problems still failing. `tracked`: the problems with an accuracy history."""
    if weak:
        basis: Basis = "weakness"
        targets = list(weak)
    else:
        failing = set(failing_ids(history, threshold, window))
        targets = sorted(
            (p for p in tracked if p.id in failing), key=lambda p: (recent_best(history[p.id], window), p.id)
        )
        basis = "failing" if targets else "none"
    return WeaknessReport(basis, targets, failure_ratios(tracked, [p.id for p in targets]), list(tracked))


# The SwS rule over each problem's accuracy history: take the last `window` rounds in which it was
# attempted (at least `min_rounds` of them); flag it when its best accuracy there is below
# `threshold` AND the least-squares slope of accuracy against round is negative. Steepest first.
WEAKNESS_SQL = """WITH per_round AS (
        SELECT problem_id, round, avg(correct::DOUBLE) AS accuracy FROM attempts GROUP BY problem_id, round),
    recent AS (
        SELECT *, row_number() OVER (PARTITION BY problem_id ORDER BY round DESC) AS age FROM per_round),
    trend AS (
        SELECT problem_id, max(accuracy) AS best, regr_slope(accuracy, round) AS slope, count(*) AS rounds
        FROM recent WHERE age <= ? GROUP BY problem_id)
    SELECT t.problem_id FROM trend t JOIN problems p ON p.id = t.problem_id
    WHERE t.rounds >= ? AND t.best < ? AND t.slope < ?
    ORDER BY t.slope, p.id"""
# A flat accuracy history can come out a hair below zero slope in floating point.
SLOPE_TOLERANCE = 1e-12


def weak_problem_ids(reader: StoreReader, threshold: float = 0.5, window: int = 3, min_rounds: int = 2) -> list[str]:
    """The ids the SwS rule flags (`WEAKNESS_SQL`), steepest decline first."""
    if min_rounds < 2 or window < min_rounds:
        raise ValueError(f"weakness: need 2 <= min_rounds <= window, got {min_rounds}, {window}")
    return reader.read(StoreQueries.select_ids, WEAKNESS_SQL, [window, min_rounds, threshold, -SLOPE_TOLERANCE])


def mine(reader: StoreReader, config: WeaknessConfig) -> WeaknessReport:
    """The weakness report of a run from its store (the loop reads through its stage, tests a local Store)."""
    history = reader.read(StoreQueries.accuracy_history)
    tracked = reader.read(StoreQueries.get_problems, list(history))
    weak = reader.read(
        StoreQueries.get_problems, weak_problem_ids(reader, config.threshold, config.window, config.min_rounds)
    )
    return weakness_report(tracked, history, weak, config.threshold, config.window)
