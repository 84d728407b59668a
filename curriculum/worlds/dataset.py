"""The dataset world: real problem sets (GSM8K train, MATH, a user's JSONL/Parquet/HF set).

- Seeds: the problems of `world.seed_sets` (entries of `datasets`), minus any question that is
  also held out; round 0 screens `selection.seed_candidates` of them, drawn by `experiment.seed`.
- Held out: from each benchmark in `world.heldout_sets`, `world.heldout_size[name]` problems
  (missing or 0: all), drawn by `experiment.seed`; a problem's family is its benchmark, so tables
  show one row per benchmark.
- Validation: `world.validation_size` problems of the seed sets, drawn by `experiment.seed` and
  kept out of the seed pool, evaluated each round beside the held-out benchmarks.
- Levels: the data's level field where its `datasets` entry names one (MATH's "Level 3"); else
  the base model's solve rate at screening decides (`world.level_edges`: 1 + the number of
  edges above the rate, so 1.0 -> 1 and 0 -> 5 with the default edges).
- Concepts: the subject/type field, so weakness mining groups real problems by subject.
- Answers: the dataset's reference answers (`answer_source="dataset"`), graded by the verifier.
  Reference solutions (the DPO winner and SFT target when every attempt fails) are stored in
  the world's answer format: steps kept, GSM8K's `<<48/2=24>>` annotations dropped, the final
  `#### 72` written as `\\boxed{72}` (verify.solution_in_format), so training teaches what the
  grader marks right.
- Size: a problem whose prompt does not fit the model (`prompt_limit`) is refused with its file
  and line, or with `world.skip_oversized` left out and listed in `skipped`.
- A record without an answer by its dataset's extraction rule is refused with its file and line,
  or with `world.skip_invalid` left out and listed in `skipped_invalid`.

This world has no oracle and no mutation operators: the symbolic Teacher, SwS synthesis and the
Generator cannot run in it (the config says so).
"""

from __future__ import annotations

import random
from functools import cached_property

from curriculum.config import Config, ConfigError, DatasetWorldConfig
from curriculum.records import Problem, SolveRate
from curriculum.worlds.base import LeftOut, World
from curriculum.worlds.loading import load_named
from curriculum.worlds.prompt_limit import PromptLimit


class DatasetWorld(World):
    """Seeds and held-out benchmarks read from data files; no oracle, mutator or pretraining data."""

    name = "dataset"
    report_by = "family"

    def __init__(self, config: Config, prompt_limit: PromptLimit | None = None):
        if not isinstance(config.world, DatasetWorldConfig):
            raise ConfigError("the dataset world reads world.name=dataset's settings")
        self.config = config
        self.settings: DatasetWorldConfig = config.world
        self.seed = config.experiment.seed
        self.extraction = config.world.answer_extraction
        self.instruction = config.world.answer_instruction
        self.prompt_limit = prompt_limit  # problems whose prompt exceeds it are refused, or skipped:
        self.skipped: list[str] = []  # "<file>:<line>: why" of each problem left out (world.skip_oversized)
        self.skipped_invalid: list[str] = []  # the same for records without an answer (world.skip_invalid)
        self._loaded: dict[str, list[Problem]] = {}  # a set both seeded from and held out is read once

    def _load(self, name: str) -> list[Problem]:

        if name not in self._loaded:
            world = self.settings
            self._loaded[name] = load_named(
                self.config,
                name,
                self.prompt_limit,
                self.skipped if world.skip_oversized else None,
                answer_format=self.extraction,
                invalid=self.skipped_invalid if world.skip_invalid else None,
            )
        return self._loaded[name]

    def heldout(self) -> list[Problem]:
        return list(self._heldout)

    def left_out(self) -> LeftOut:
        return LeftOut(self.skipped, self.skipped_invalid)

    @cached_property
    def _heldout(self) -> list[Problem]:
        problems: list[Problem] = []
        for name in self.settings.heldout_sets:
            pool = _distinct(self._load(name))
            size = self.settings.heldout_size.get(name, 0)
            if size and size < len(pool):
                rng = random.Random(f"dataset:{self.seed}:heldout:{name}")
                pool = [pool[i] for i in sorted(rng.sample(range(len(pool)), size))]
            problems += pool
        return problems

    def validation(self) -> list[Problem]:
        return list(self._split[1])

    @property
    def seed_pool(self) -> list[Problem]:
        """Every seed-set problem whose question is neither held out nor in the validation set, once
        each, in file order."""
        return self._split[0]

    @cached_property
    def _split(self) -> tuple[list[Problem], list[Problem]]:
        """The seed sets' problems not held out, split into the seed pool and `world.validation_size`
        problems drawn by the seed."""
        held = {p.id for p in self._heldout}
        loaded = _distinct([p for name in self.settings.seed_sets for p in self._load(name)])
        pool = [p for p in loaded if p.id not in held]
        size = self.settings.validation_size
        if size and size >= len(pool):
            raise ConfigError(
                f"world.validation_size={size} leaves no seed problem: the seed sets hold {len(pool)} problems "
                "that are not held out"
            )
        chosen = set(random.Random(f"dataset:{self.seed}:validation").sample(range(len(pool)), size))
        validation = [p for i, p in enumerate(pool) if i in chosen]
        seeds = [p.model_copy(update={"source": "seed"}) for i, p in enumerate(pool) if i not in chosen]
        return seeds, validation

    def seed_candidates(self, n: int, rng: random.Random) -> list[Problem]:
        pool = self.seed_pool
        if n >= len(pool):
            return list(pool)
        return [pool[i] for i in sorted(rng.sample(range(len(pool)), n))]

    def screened(self, problem: Problem, rate: SolveRate) -> Problem:
        if problem.level is not None:
            return problem
        return problem.model_copy(update={"level": level_from_rate(rate.rate, self.settings.level_edges)})


def level_from_rate(rate: float, edges: list[float]) -> int:
    """1 + the number of edges above `rate`: the less the base model solves, the higher the level."""
    return 1 + sum(rate < edge - 1e-9 for edge in edges)


def _distinct(problems: list[Problem]) -> list[Problem]:
    """The first problem of each id (a question repeated in a file is one problem)."""
    first: dict[str, Problem] = {}
    for problem in problems:
        first.setdefault(problem.id, problem)
    return list(first.values())
