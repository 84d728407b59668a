"""What the loop, the roles and the curriculum may ask of a world.

Every world gives held-out problems, seed candidates and the answer format. What only some worlds
have is an optional capability: `oracle()`, `mutator()` and `pretraining()` return an object that
has it, or None. A recipe that needs one on a world without it is refused by the config in one
line; code that can do without one asks for it and takes None as "not here" (no attribute
probing). Nothing outside `curriculum/worlds/` knows which world it is in: it asks
`worlds.world_for(config)` and uses these methods.

A new world subclasses `World` (the optional capabilities then default to None) and implements
`heldout` and `seed_candidates`.
"""

from __future__ import annotations

import random
from typing import Any, Literal, Protocol

from curriculum.config import Extraction
from curriculum.records import Problem, ProblemSource, SolveRate


class Oracle(Protocol):
    """Exact answers: solves question text of the world's own kinds and checks a problem's answer."""

    def solve(self, question: str) -> str | None:
        """The exact answer of `question`, or None when it is not a question the oracle can solve."""
        ...

    def check(self, problem: Problem) -> str | None:
        """None if the problem's answer and solution are right; otherwise the reason (a short word)."""
        ...

    def problem_from_question(
        self,
        question: str,
        source: ProblemSource,
        parent_id: str | None = None,
        round: int = 0,
        created_by: str = ...,
    ) -> Problem | None:
        """A full problem (answer, solution, level, concepts) for question text someone else wrote."""
        ...

    def unsolvable_reason(self, question: str) -> str:
        """Why the oracle cannot solve `question`."""
        ...


class Mutator(Protocol):
    """Variants of a problem aimed at a kind of change: harder, easier or a sibling (teacher.mutations)."""

    def mutate(
        self, problem: Problem, kind: str, rng: random.Random, round: int = 0, source: ProblemSource = "teacher"
    ) -> Problem: ...

    def check(self, problem: Problem) -> str | None:
        """None if a variant is valid; otherwise the reason it is rejected."""
        ...

    def level_after(self, kind: str, level: int) -> int:
        """The level a `kind` variant of a level-`level` problem has."""
        ...


class Pretraining(Protocol):
    """Training problems for a toy base model built from scratch (`model.kind: tiny`)."""

    def training_problems(
        self, levels: list[int] | tuple[int, ...], n: int, rng: random.Random, weights: dict[int, float] | None = None
    ) -> list[Problem]: ...

    def pretraining_key(self) -> dict[str, Any]:
        """JSON values that change whenever the problems it would write change (the base model's cache key)."""
        ...


class World(Protocol):
    name: str
    #: how a model's answer is read (verify.extract_answer) and what a question is followed by
    extraction: Extraction
    instruction: str
    #: what per-group tables show: difficulty levels (arithmetic) or benchmarks (dataset)
    report_by: Literal["level", "family"]

    def heldout(self) -> list[Problem]:
        """The fixed held-out evaluation problems."""
        ...

    def validation(self) -> list[Problem]:
        """Evaluation problems apart from the held-out ones, kept out of training like them: settings
        are chosen by their accuracy so that the held-out accuracy stays an unbiased report (none by
        default)."""
        return []

    def seed_candidates(self, n: int, rng: random.Random) -> list[Problem]:
        """`n` candidate seed problems (source "seed") for round 0's screening, drawn with `rng`."""
        ...

    def screened(self, problem: Problem, rate: SolveRate) -> Problem:
        """A seed candidate after screening with the base model, e.g. with a level from its solve rate."""
        return problem

    def left_out(self) -> LeftOut:
        """What the world's data files held that it left out (`world.skip_oversized`, `world.skip_invalid`)."""
        return LeftOut()

    # -- optional capabilities: an object that has it, or None

    def oracle(self) -> Oracle | None:
        return None

    def mutator(self) -> Mutator | None:
        return None

    def pretraining(self) -> Pretraining | None:
        return None


class LeftOut:
    """`"<file>:<line>: why"` of each record left out: its prompt does not fit the model (`oversized`), or
    it has no answer by its dataset's extraction rule (`invalid`)."""

    def __init__(self, oversized: list[str] | None = None, invalid: list[str] | None = None) -> None:
        self.oversized = oversized if oversized is not None else []
        self.invalid = invalid if invalid is not None else []


def default_level_after(kind: str, level: int) -> int:
    """A variant's level in a world without mutation operators: one up for harder, one down (not below
    1) for easier, the same for a sibling."""
    return max(1, level + {"harder": 1, "easier": -1}.get(kind, 0))
