"""The arithmetic world: held-out and seed sets, and its capabilities (oracle, mutator, pretraining data)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any, Literal

from curriculum.config import ArithmeticWorldConfig
from curriculum.environment import source_digest
from curriculum.errors import CurriculumError
from curriculum.records import Problem, ProblemSource, SolveRate, normalize_question
from curriculum.worlds.arithmetic.sampling import easier_knobs, harder_knobs, sample_at_level, sample_task
from curriculum.worlds.arithmetic.tasks import (
    ANSWER_PREFIX,
    FAMILIES,
    Task,
    answer_of,
    concepts_of,
    knobs_of,
    level_of,
)
from curriculum.worlds.arithmetic.text import parse_question, question_of
from curriculum.worlds.arithmetic.traces import expression_of, solution_of
from curriculum.worlds.base import Mutator, Oracle, Pretraining, World

CREATED_BY = "world.arithmetic"

MutationKind = Literal["harder", "easier", "sibling"]

# The modules whose code shapes the problems a toy base model is pretrained on (its cache key).
SOURCE = [f"curriculum.worlds.arithmetic.{name}" for name in ("tasks", "traces", "text", "sampling", "world")]


class WorldConfigError(CurriculumError, ValueError):
    """A world.* or pretrain.levels setting this world cannot honour."""


class ArithmeticWorld(World):
    """Problems, held-out and seed sets, and every optional capability: an exact oracle, mutation
    operators for the Teacher and pretraining data for the toy base model (each is this object).

    Everything is deterministic given `seed` (and the `rng` passed to sampling methods).
    """

    name = "arithmetic"
    report_by = "level"

    def __init__(self, config: ArithmeticWorldConfig, seed: int):
        unknown = [f for f in config.families if f not in FAMILIES]
        if unknown:
            raise WorldConfigError(f"world.families: unknown family '{unknown[0]}' (known: {', '.join(FAMILIES)})")
        self.config = config
        self.seed = seed
        self.extraction = config.answer_extraction
        self.instruction = config.answer_instruction
        self.families: tuple[str, ...] = tuple(dict.fromkeys(config.families))
        self.levels: tuple[int, ...] = tuple(range(1, config.max_level + 1))
        self._heldout: list[Problem] | None = None
        self._validation: list[Problem] | None = None

    # -- capabilities

    def oracle(self) -> Oracle:
        return self

    def mutator(self) -> Mutator:
        return self

    def pretraining(self) -> Pretraining:
        return self

    # -- sampling

    def seed_candidates(self, n: int, rng: random.Random) -> list[Problem]:
        """`n` problems cycling over families x levels (one family's levels in a row)."""
        cells = [(f, level) for f in self.families for level in self.levels]
        return [self.sample(*cells[i % len(cells)], rng, source="seed") for i in range(n)]

    def screened(self, problem: Problem, rate: SolveRate) -> Problem:
        return problem  # levels come from the problem's knobs

    def sample(self, family: str, level: int, rng: random.Random, source: ProblemSource = "seed") -> Problem:
        self._check_cell(family, level)
        return self._problem(sample_at_level(family, level, rng), source)

    def heldout(self) -> list[Problem]:
        """`heldout_per_level` distinct problems per family and level, fixed by the seed (a larger count
        keeps the smaller one's problems and adds to them)."""
        if self._heldout is None:
            self._heldout = self._evaluation_set("heldout", self.config.heldout_count, set())
        return list(self._heldout)

    def validation(self) -> list[Problem]:
        """`validation_per_level` distinct problems per family and level, none of them held out, fixed
        by the seed; the held-out set does not depend on it."""
        if self._validation is None:
            held = {_key(p) for p in self.heldout()}
            self._validation = self._evaluation_set("validation", self.config.validation_count, held)
        return list(self._validation)

    def _evaluation_set(self, name: str, count: Callable[[int], int], exclude: set[tuple[str, str]]) -> list[Problem]:
        """`count(level)` distinct problems per family and level, none in `exclude`, drawn by the seed."""
        problems: list[Problem] = []
        for family in self.families:
            for level in self.levels:
                if count(level):
                    rng = random.Random(f"arithmetic:{self.seed}:{name}:{family}:{level}")
                    problems += self._distinct(
                        family, level, count(level), rng, exclude, "dataset", f"world.{name}_per_level"
                    )
        return problems

    def seed_problems(self) -> list[Problem]:
        """`seed_set_size` problems spread evenly over families x levels, none held out (a fixed seed
        set without screening: tests and benchmarks)."""
        held = self._held_keys()
        cells = [(f, level) for f in self.families for level in self.levels]
        rng = random.Random(f"arithmetic:{self.seed}:seed_set")
        base, extra = divmod(self.config.seed_set_size, len(cells))
        lucky = set(rng.sample(range(len(cells)), extra))
        problems: list[Problem] = []
        for index, (family, level) in enumerate(cells):
            count = base + (index in lucky)
            if count:
                problems += self._distinct(family, level, count, rng, held, "seed", "world.seed_set_size")
        return problems

    # -- pretraining data

    def pretraining_key(self) -> dict[str, Any]:
        """What of this world shapes a base model pretrained on it: its settings, the code that
        writes its problems, and a hash of sample problems and traces (a change in the trace format
        gives a new key even where the code digest could not tell)."""
        rng = random.Random(0)
        samples = [self.sample(family, level, rng) for family in self.families for level in (1, self.config.max_level)]
        text = "\n\n".join(f"{p.question}\n{p.solution}" for p in samples)
        shaping = {"name", "families", "max_level", "heldout_per_level", "seed_set_size"}
        if self.config.validation_per_level:  # a key of its own only when set: older bases keep theirs
            shaping.add("validation_per_level")
        return {
            "world": self.config.model_dump(mode="json", include=shaping),
            "traces": hashlib.sha256(text.encode("utf-8")).hexdigest()[:12],
            "code": source_digest(SOURCE),
        }

    def training_problems(
        self, levels: list[int] | tuple[int, ...], n: int, rng: random.Random, weights: dict[int, float] | None = None
    ) -> list[Problem]:
        """`n` problems for pretraining over families x `levels`, each level's share of `n` in
        proportion to its weight (default 1), families cycled within a level; repeats are allowed
        (level 1 has few distinct questions) but no question matches a held-out one."""
        for level in levels:
            if level not in self.levels:
                raise WorldConfigError(
                    f"pretrain.levels: level {level} is outside 1..{self.config.max_level} (world.max_level)"
                )
        held = self._held_keys()
        share = [(weights or {}).get(level, 1.0) for level in levels]
        counts = [round(n * w / sum(share)) for w in share]
        counts[0] += n - sum(counts)  # rounding leftovers go to the first (easiest) level
        cells = [
            (self.families[i % len(self.families)], level) for level, count in zip(levels, counts) for i in range(count)
        ]
        problems = []
        for family, level in cells:
            for _ in range(1000):
                task = sample_at_level(family, level, rng)
                if key_of(task) not in held:
                    problems.append(self._problem(task, "dataset"))
                    break
            else:
                raise WorldConfigError(
                    f"every {family} problem at level {level} is held out; lower world.heldout_per_level"
                )
        rng.shuffle(problems)
        return problems

    def _distinct(
        self,
        family: str,
        level: int,
        count: int,
        rng: random.Random,
        exclude: set[tuple[str, str]],
        source: ProblemSource,
        setting: str,
    ) -> list[Problem]:
        problems: list[Problem] = []
        seen = set(exclude)
        self._check_cell(family, level)
        for _ in range(200 * count):
            if len(problems) == count:
                break
            task = sample_at_level(family, level, rng)
            key = key_of(task)
            if key not in seen:
                seen.add(key)
                problems.append(self._problem(task, source))
        if len(problems) < count:
            raise WorldConfigError(
                f"{setting}: found only {len(problems)} distinct {family} problems at level {level}, "
                f"{count} needed; lower it"
            )
        return problems

    def _held_keys(self) -> set[tuple[str, str]]:
        """The held-out and validation questions, which no training or seed problem may match."""
        return {_key(p) for p in self.heldout() + self.validation()}

    def _check_cell(self, family: str, level: int) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown family '{family}' (known: {', '.join(FAMILIES)})")
        if level not in self.levels:
            raise ValueError(f"level {level} is outside 1..{self.config.max_level} (world.max_level)")

    # -- the Teacher's variants

    def level_after(self, kind: str, level: int) -> int:
        """The level `mutate` aims a `kind` variant of a level-`level` problem at."""
        if kind == "harder" and level < self.config.max_level:
            return level + 1
        if kind == "easier" and level > 1:
            return level - 1
        return level

    def mutate(
        self,
        problem: Problem,
        kind: str,
        rng: random.Random,
        round: int = 0,
        source: ProblemSource = "teacher",
    ) -> Problem:
        """A new problem of the same family and concept: `harder` adds a digit (one level up),
        `easier` removes one, `sibling` keeps the knobs with new numbers. At the edge of the
        level range (harder at max_level, easier at level 1) it makes a sibling instead."""
        task, reason = parse_question(problem.question)
        if task is None:
            raise ValueError(f"cannot mutate problem {problem.id}: its question is {reason}")
        knobs = knobs_of(task)
        level = level_of(task.op, knobs)
        target: dict[str, int] | None = knobs
        if kind == "harder":
            target = harder_knobs(task.op, knobs) if level < self.config.max_level else knobs
        elif kind == "easier":
            target = easier_knobs(task.op, knobs) if level > 1 else None
        elif kind != "sibling":
            raise ValueError(f"mutation kind must be harder, easier or sibling, not '{kind}'")
        target = target or knobs
        wanted = concepts_of(task)
        original = normalize_question(problem.question)
        # Numbers are drawn until the concept tags match the parent's; if the knobs make that
        # impossible (a carry in 1-digit sums of 3 terms...), first the main tag, then any.
        for attempt in range(600):
            candidate = sample_task(task.family, task.op, target, rng)
            if normalize_question(question_of(candidate)) == original:
                continue
            tags = concepts_of(candidate)
            if (attempt < 300 and tags != wanted) or (attempt < 500 and tags[0] != wanted[0]):
                continue
            return self._problem(candidate, source, parent_id=problem.id, round=round)
        raise RuntimeError(f"could not vary problem {problem.id} ({kind}); its knobs {target} allow too few questions")

    # -- the oracle

    def solve(self, question: str) -> str | None:
        """The exact integer answer of any question in this world's templates, else None."""
        task, _ = parse_question(question)
        return None if task is None else str(answer_of(task))

    def check(self, problem: Problem) -> str | None:
        """None if the oracle agrees with the problem's answer and its solution ends with the
        right answer line; otherwise the reason."""
        task, reason = parse_question(problem.question)
        if task is None:
            return reason
        expected = answer_of(task)
        if problem.family and problem.family != task.family:
            return "family_mismatch"
        try:
            given = int(problem.answer.strip())
        except ValueError:
            return "answer_not_integer"
        if given != expected:
            return "wrong_answer"
        lines = problem.solution.strip().splitlines()
        if not lines or not lines[-1].startswith(ANSWER_PREFIX.strip()):
            return "missing_answer_line"
        if lines[-1].strip() != f"{ANSWER_PREFIX}{expected}":
            return "answer_line_mismatch"
        return None

    def unsolvable_reason(self, question: str) -> str:
        """Why the oracle cannot solve `question` (what its parser says)."""
        return f"oracle: {parse_question(question)[1]}"

    def problem_from_question(
        self,
        question: str,
        source: ProblemSource,
        parent_id: str | None = None,
        round: int = 0,
        created_by: str = CREATED_BY,
    ) -> Problem | None:
        """A full problem (answer, trace, family, level, knobs, concepts) for question text
        someone else wrote, e.g. the Generator; None if the oracle cannot solve it."""
        task, _ = parse_question(question)
        if task is None:
            return None
        return self._problem(task, source, parent_id, round, created_by, question=question)

    def _problem(
        self,
        task: Task,
        source: ProblemSource,
        parent_id: str | None = None,
        round: int = 0,
        created_by: str = CREATED_BY,
        question: str | None = None,
    ) -> Problem:
        knobs = knobs_of(task)
        return Problem(
            question=question if question is not None else question_of(task),
            answer=str(answer_of(task)),
            solution=solution_of(task),
            source=source,
            parent_id=parent_id,
            family=task.family,
            level=level_of(task.op, knobs),
            concepts=concepts_of(task),
            knobs=knobs,
            round_created=round,
            created_by=created_by,
        )


def key_of(task: Task | None) -> tuple[str, str]:
    """What makes two questions the same problem: family and arithmetic (a word problem
    with the same numbers but another name is the same problem)."""
    return ("", "") if task is None else (task.family, expression_of(task))


def _key(problem: Problem) -> tuple[str, str]:
    return key_of(parse_question(problem.question)[0])
