"""Teachers: given failed problems and their failed attempts, write new problems.

The interface is what the loop sees; `SymbolicTeacher` implements it for the arithmetic
world with mutation operators. An LLM Teacher (a prompted model behind an
OpenAI-compatible endpoint) implements the same `teach` and plugs in by config.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from curriculum.config import TeacherConfig
from curriculum.records import Attempt, Problem, RejectedDraft


@dataclass(frozen=True)
class Failure:
    """A problem the Solver failed, with the attempts that failed it."""

    problem: Problem
    attempts: tuple[Attempt, ...]

    @property
    def solve_rate(self) -> float:
        return sum(a.correct for a in self.attempts) / len(self.attempts) if self.attempts else 0.0


@dataclass
class TeachingResult:
    problems: list[Problem] = field(default_factory=list)
    rejected: list[RejectedDraft] = field(default_factory=list)


class Teacher(ABC):
    @abstractmethod
    def teach(self, failures: Sequence[Failure], known_ids: Iterable[str], round: int) -> TeachingResult:
        """New problems aimed at the failures' concepts; drafts that are invalid or already
        known (`known_ids`: store problems and held-out problems) come back as rejected."""


class SymbolicTeacher(Teacher):
    """Variants of each failed problem aimed at the Solver's reach, with exact answers from the world."""

    def __init__(self, world, config: TeacherConfig, seed: int, name: str = "teacher"):
        self.world = world
        self.config = config
        self.seed = seed
        self.name = name

    def teach(self, failures: Sequence[Failure], known_ids: Iterable[str], round: int) -> TeachingResult:
        # The rng depends only on (seed, round) so a retried or resumed round writes the same problems.
        rng = random.Random(f"teacher:{self.seed}:{round}")
        known = set(known_ids)
        result = TeachingResult()
        # Hardest failures first: they say most about what the Solver cannot do yet.
        chosen = sorted(failures, key=lambda f: (f.solve_rate, f.problem.id))[: self.config.max_failures]
        for failure in chosen:
            mutations = self.mutations_for(failure)
            for i in range(self.config.variants_per_failure):
                kind = mutations[i % len(mutations)]
                draft = self.world.mutate(failure.problem, kind, rng, round=round, source="teacher")
                draft = draft.model_copy(update={"created_by": self.name})
                reason = "duplicate" if draft.id in known else self.world.check(draft)
                if reason:
                    result.rejected.append(RejectedDraft(
                        source="teacher", parent_id=failure.problem.id, text=draft.question, reason=reason,
                        detail=f"{kind} variant", round=round, created_by=self.name,
                    ))
                    continue
                known.add(draft.id)
                result.problems.append(draft)
        return result

    def mutations_for(self, failure: Failure) -> list[str]:
        """Out of reach (solve rate under `unsolved_below`): the same size again or smaller;
        otherwise `mutations` (harder and sibling by default), so the curriculum moves up a level
        only from problems the Solver already partly solves."""
        if failure.solve_rate < self.config.unsolved_below - 1e-9:
            return list(self.config.unsolved_mutations)
        return list(self.config.mutations)
