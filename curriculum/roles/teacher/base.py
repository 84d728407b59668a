"""What a Teacher is: given failed problems and their failed attempts, write new problems.

The interface is what the loop sees; `symbolic.SymbolicTeacher` implements it with a world's
mutation operators. An LLM Teacher (a prompted model behind an OpenAI-compatible endpoint)
implements the same `teach` and plugs in by config.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

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
