"""Problem synthesis aimed at concepts (SwS), and its random-concept baseline.

Each round, `synthesis.budget` drafts are written, each a variant of a parent problem:

- `concepts: weakness` (SwS): the budget is split over concepts in proportion to their failure
  ratios (weakness.py); a concept's drafts vary its weak problems in turn (weakest first).
- `concepts: uniform` (baseline): each draft draws a concept uniformly from the tracked ones and
  a parent uniformly from that concept's problems, so only the choice of concepts differs.

A draft is the world's `mutate` of its parent (`synthesis.mutations` in turn: a sibling with new
numbers keeps the concept; harder adds a digit), with the exact answer from the world's oracle
(SwS needs a majority vote of a strong model for its reference answers; this world has an
oracle). Drafts are screened by the Solver: kept when its solve rate over `solver.attempts`
attempts lies in [band_low, band_high] (SwS: 25-75%); the rest are stored as rejected with the
reason (too_easy, too_hard; duplicate or invalid before screening).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from curriculum.config import SynthesisConfig
from curriculum.curricula.weakness import WeaknessReport, allocate_budget, concept_of
from curriculum.records import (
    Attempt,
    ModelCall,
    Problem,
    RejectedDraft,
    group_by_problem,
    rate_within,
)
from curriculum.worlds import Mutator

NAME = "synthesis"


@dataclass(frozen=True)
class Target:
    concept: str
    parent: Problem


def _by_concept(problems: Iterable[Problem]) -> dict[str, list[Problem]]:
    groups: dict[str, list[Problem]] = defaultdict(list)
    for problem in problems:
        groups[concept_of(problem)].append(problem)
    return dict(groups)


def weakness_targets(report: WeaknessReport, budget: int) -> list[Target]:
    """Budget per concept by failure ratio; a concept's parents are its targets, in turn."""
    parents = _by_concept(report.targets)
    return [
        Target(concept, parents[concept][j % len(parents[concept])])
        for concept, n in allocate_budget(report.failure_ratio, budget).items()
        for j in range(n)
    ]


def uniform_targets(tracked: Sequence[Problem], budget: int, rng: random.Random) -> list[Target]:
    """Each draft: a concept drawn uniformly from the tracked ones, then one of its problems."""
    parents = {c: sorted(ps, key=lambda p: p.id) for c, ps in _by_concept(tracked).items()}
    concepts = sorted(parents)
    if not concepts:
        return []
    targets = []
    for _ in range(budget):
        concept = rng.choice(concepts)
        targets.append(Target(concept, rng.choice(parents[concept])))
    return targets


def plan(config: SynthesisConfig, report: WeaknessReport, rng: random.Random) -> list[Target]:
    """The round's `synthesis.budget` targets, aimed at weaknesses or at uniformly drawn concepts."""
    if config.concepts == "weakness":
        return weakness_targets(report, config.budget)
    return uniform_targets(report.tracked, config.budget, rng)


@dataclass
class Drafts:
    problems: list[Problem] = field(default_factory=list)
    rejected: list[RejectedDraft] = field(default_factory=list)
    calls: list[ModelCall] = field(default_factory=list)  # synthesis.kind=llm: the audited model calls


def draft(
    targets: Sequence[Target],
    mutator: Mutator,
    mutations: Sequence[str],
    known_ids: Iterable[str],
    round: int,
    rng: random.Random,
    name: str = NAME,
) -> Drafts:
    """One variant per target; duplicates (of `known_ids` or each other) and invalid ones are rejected."""
    known = set(known_ids)
    out = Drafts()

    def reject(target: Target, text: str, reason: str, detail: str) -> None:
        out.rejected.append(
            RejectedDraft(
                source="synthesis",
                parent_id=target.parent.id,
                text=text,
                reason=reason,
                detail=detail,
                round=round,
                created_by=name,
            )
        )

    for j, target in enumerate(targets):
        kind = mutations[j % len(mutations)]
        try:
            problem = mutator.mutate(target.parent, kind, rng, round=round, source="synthesis")
        except (ValueError, RuntimeError) as exc:  # the parent allows no variant of this kind
            reject(target, target.parent.question, "no_variant", f"{kind} of {target.concept}: {exc}")
            continue
        problem = problem.model_copy(update={"created_by": name})
        reason = "duplicate" if problem.id in known else mutator.check(problem)
        if reason:
            reject(target, problem.question, reason, f"{kind} variant for {target.concept}")
            continue
        known.add(problem.id)
        out.problems.append(problem)
    return out


@dataclass
class Screened:
    kept: list[Problem] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)  # the kept problems' screening attempts
    rejected: list[RejectedDraft] = field(default_factory=list)


def screen(
    problems: Sequence[Problem], attempts: Sequence[Attempt], low: float, high: float, round: int, name: str = NAME
) -> Screened:
    """Keep the drafts whose solve rate over their attempts lies in [low, high]."""
    by_problem = group_by_problem(attempts)
    out = Screened()
    for problem in problems:
        tries = by_problem.get(problem.id, [])
        correct = sum(a.correct for a in tries)
        rate = correct / len(tries) if tries else None
        if rate is not None and rate_within(rate, low, high):
            out.kept.append(problem)
            out.attempts += tries
            continue
        reason = "not_attempted" if rate is None else "too_hard" if rate < low else "too_easy"
        detail = (
            "no attempt came back"
            if rate is None
            else (f"solve rate {correct}/{len(tries)} outside [{low:g}, {high:g}]")
        )
        out.rejected.append(
            RejectedDraft(
                source="synthesis",
                parent_id=problem.parent_id,
                text=problem.question,
                reason=reason,
                detail=detail,
                round=round,
                created_by=name,
            )
        )
    return out
