"""What the loop hands a Learner each round (`LearnBatch`) and what it gets back (`LearnOutcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from curriculum.records import Attempt, PreferencePair, Problem


@dataclass(frozen=True)
class Group:
    """One problem of the round with its prompt and its graded attempts (a GRPO group)."""

    problem: Problem
    prompt: str
    attempts: tuple[Attempt, ...]

    @property
    def solve_rate(self) -> float:
        return sum(a.correct for a in self.attempts) / len(self.attempts) if self.attempts else 0.0


@dataclass(frozen=True)
class LearnBatch:
    """What a round gives the Learner: groups in the order the curriculum selected them."""

    round: int
    policy_version: int  # the version that sampled the attempts
    groups: tuple[Group, ...]


@dataclass
class LearnOutcome:
    metrics: dict[str, float]
    pairs: list[PreferencePair] = field(default_factory=list)  # records the store keeps (DPO only)
