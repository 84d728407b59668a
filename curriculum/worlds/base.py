"""What the loop, the roles and the curriculum may ask of a world.

Every world gives held-out problems, seed candidates and the answer format; a world that also
has an oracle and mutation operators (`MutableWorld`: the arithmetic world) can host the
symbolic Teacher, SwS synthesis and the Generator. Nothing outside `curriculum/worlds/` knows
which world it is in: it asks `make_world(config)` and uses these methods.
"""

from __future__ import annotations

import random
from typing import Literal, Protocol, runtime_checkable

from curriculum.records import Problem, ProblemSource, SolveRate


class World(Protocol):
    name: str
    #: how a model's answer is read (verify.extract_answer) and what a question is followed by
    extraction: str
    instruction: str
    #: what per-group tables show: difficulty levels (arithmetic) or benchmarks (dataset)
    report_by: Literal["level", "family"]

    def heldout(self) -> list[Problem]:
        """The fixed held-out evaluation problems."""

    def seed_candidates(self, n: int, rng: random.Random) -> list[Problem]:
        """`n` candidate seed problems (source "seed") for round 0's screening, drawn with `rng`."""

    def screened(self, problem: Problem, rate: SolveRate) -> Problem:
        """A seed candidate after screening with the base model, e.g. with a level from its solve rate."""


@runtime_checkable
class MutableWorld(World, Protocol):
    """A world with an exact oracle and mutation operators."""

    def mutate(
        self, problem: Problem, kind: str, rng: random.Random, round: int = 0, source: ProblemSource = "teacher"
    ) -> Problem: ...

    def check(self, problem: Problem) -> str | None: ...

    def solve(self, question: str) -> str | None: ...

    def problem_from_question(
        self, question: str, source: ProblemSource, parent_id: str | None = None, round: int = 0, created_by: str = ...
    ) -> Problem | None: ...

    def unsolvable_reason(self, question: str) -> str: ...
