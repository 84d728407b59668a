"""What a Teacher is: given failed problems and their failed attempts, write new problems.

The interface is what the loop sees; `symbolic.SymbolicTeacher` implements it with a world's
mutation operators, `llm.LLMTeacher` with a prompted model behind an OpenAI-compatible endpoint
(`teacher.kind`). Both aim their variants the same way (`mutations_for`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from curriculum.config import TeacherConfig
from curriculum.curricula.synthesis import Drafts, Target
from curriculum.errors import CurriculumError
from curriculum.records import GradedGroup, ModelCall, Problem, RejectedDraft

# A problem the Solver failed, with the attempts that failed it.
Failure = GradedGroup


@dataclass(frozen=True)
class ReferenceCheck:
    """The labeller's vote on a problem that has a reference answer (a dataset's): how far its
    labels can be trusted on a world without an oracle (label_quality.py)."""

    problem_id: str
    reference: str
    voted: str | None  # the majority's answer (None: no consensus)
    agreed: bool


@dataclass
class TeachingResult:
    problems: list[Problem] = field(default_factory=list)
    rejected: list[RejectedDraft] = field(default_factory=list)
    calls: list[ModelCall] = field(default_factory=list)  # an LLM Teacher's audited model calls
    checks: list[ReferenceCheck] = field(default_factory=list)  # `label`'s votes on reference problems


def mutations_for(failure: Failure, config: TeacherConfig) -> list[str]:
    """Out of reach (solve rate under `unsolved_below`): the same size again or smaller;
    otherwise `mutations` (harder and sibling by default), so the curriculum moves up a level
    only from problems the Solver already partly solves."""
    if failure.solve_rate < config.unsolved_below - 1e-9:
        return list(config.unsolved_mutations)
    return list(config.mutations)


class Teacher(ABC):
    @abstractmethod
    def teach(self, failures: Sequence[Failure], known_ids: Iterable[str], round: int) -> TeachingResult:
        """New problems aimed at the failures' concepts; drafts that are invalid or already
        known (`known_ids`: store problems and held-out problems) come back as rejected."""

    def synthesize(self, targets: Sequence[Target], known_ids: Iterable[str], round: int, seed: int) -> Drafts:
        """SwS drafts written by the Teacher's model (synthesis.kind=llm): an LLM Teacher's."""
        raise CurriculumError("synthesis.kind=llm writes with the Teacher's model: set teacher.kind=llm")

    def label(
        self, drafts: Sequence[Problem], known_ids: Iterable[str], round: int, references: Sequence[Problem] = ()
    ) -> TeachingResult:
        """Reference answers by majority vote for the Generator's drafts (on a world without an oracle),
        and the vote on each of `references` against its reference answer: an LLM Teacher's."""
        raise CurriculumError("labelling drafts by vote needs the LLM Teacher's labeller: set teacher.kind=llm")

    def close(self) -> None:  # noqa: B027 - optional: the symbolic Teacher holds nothing
        """Release what the Teacher holds (a server, a verifier); called when the run ends."""


def call_metrics(calls: Sequence[ModelCall], prefix: str) -> dict[str, float]:
    """`<prefix>/calls...`: how many model calls a stage made, how many failed and why, their
    latency and tokens (what a user watches to see whether the Teacher's endpoint copes)."""
    if not calls:
        return {}
    errors = Counter(call.error.split(":")[0] for call in calls if call.error)
    out = {
        f"{prefix}/calls": float(len(calls)),
        f"{prefix}/call_errors": float(sum(errors.values())),
        f"{prefix}/call_latency_s_mean": sum(c.latency_s for c in calls) / len(calls),
        f"{prefix}/prompt_tokens": float(sum(c.prompt_tokens or 0 for c in calls)),
        f"{prefix}/completion_tokens": float(sum(c.completion_tokens or 0 for c in calls)),
    }
    out.update({f"{prefix}/call_errors/{reason}": float(n) for reason, n in sorted(errors.items())})
    return out
