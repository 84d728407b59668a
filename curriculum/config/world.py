"""world: where problems and reference answers come from, one variant per world (`world.name`).

`arithmetic`: the built-in world with an exact oracle and mutation operators (what the symbolic
Teacher, SwS synthesis and the Generator need). `dataset`: real problem sets, seeds from `seed_sets`
and held-out subsets of `heldout_sets`, all named in `datasets`. A key of one variant in the other
is refused with one line (config/loading.py).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from curriculum.config.base import BOXED_INSTRUCTION, Extraction, Section


class WorldSettings(Section):
    """What every world is told."""

    # The answer format when `extraction` is not set (each variant's own).
    default_extraction: ClassVar[Extraction] = "answer_colon"

    seed_set_size: int = Field(default=100, ge=1, description="seed problems chosen in round 0")
    # How a model is asked to answer and how its answer is read, by the loop, its held-out evaluation
    # and `curriculum eval` alike: answer_colon (`answer: N`, the toy model's trace) on arithmetic,
    # boxed (\boxed{}) with BOXED_INSTRUCTION on dataset.
    extraction: Extraction | None = Field(
        default=None, description="default: answer_colon (arithmetic), boxed (dataset)"
    )
    instruction: str | None = Field(
        default=None,
        description="appended to every question before the chat "
        "template; default: BOXED_INSTRUCTION when answers are read from "
        "\\boxed{}, else none",
    )
    skip_invalid: bool = Field(
        default=False,
        description="leave out (and count, data/skipped_invalid) "
        "records whose answer field holds no answer by the dataset's extraction rule (a word "
        "where it reads numbers, an empty field), instead of refusing the data file",
    )

    @property
    def answer_extraction(self) -> Extraction:
        """How the Solver's answers are read in this world."""
        return self.extraction if self.extraction is not None else self.default_extraction

    @property
    def answer_instruction(self) -> str:
        """What is appended to each question before the chat template: the request to answer the
        way `answer_extraction` reads."""
        if self.instruction is not None:
            return self.instruction
        return BOXED_INSTRUCTION if self.answer_extraction == "boxed" else ""


class ArithmeticWorldConfig(WorldSettings):
    """The built-in arithmetic world (curriculum/worlds/arithmetic/)."""

    name: Literal["arithmetic"] = "arithmetic"
    families: list[str] = Field(default_factory=lambda: ["add", "sub", "mul", "sum", "linear", "word"], min_length=1)
    max_level: int = Field(default=5, ge=1, le=9)
    heldout_per_level: int | dict[int, int] = Field(
        default=20,
        description="held-out problems per family and level: one count for every level, or a count per "
        "level ({1: 25, 2: 250, ...})",
    )

    validation_per_level: int | dict[int, int] = Field(
        default=0,
        description="validation problems per family and level (one count, or a count per level; a level "
        "left out has none), drawn apart from the held-out ones and kept out of training like them: "
        "choose settings by their accuracy (validation/*), report the held-out set's (0: no validation set)",
    )

    @model_validator(mode="after")
    def _heldout_counts(self) -> ArithmeticWorldConfig:
        counts = self.heldout_per_level
        if isinstance(counts, dict):
            missing = [level for level in range(1, self.max_level + 1) if level not in counts]
            if missing:
                raise ValueError(
                    f"world.heldout_per_level has no count for level {missing[0]} (levels 1..{self.max_level} need one)"
                )
        for level, count in _per_level(counts):
            if count < 1:
                raise ValueError(f"world.heldout_per_level{_where(level)}={count} must be >= 1")
        for level, count in _per_level(self.validation_per_level):
            if count < 0:
                raise ValueError(f"world.validation_per_level{_where(level)}={count} must be >= 0")
            if level is not None and not 1 <= level <= self.max_level:
                raise ValueError(f"world.validation_per_level{_where(level)}: level is outside 1..{self.max_level}")
        return self

    def heldout_count(self, level: int) -> int:
        """Held-out problems per family at `level`."""
        counts = self.heldout_per_level
        return counts[level] if isinstance(counts, dict) else counts

    def validation_count(self, level: int) -> int:
        """Validation problems per family at `level`."""
        counts = self.validation_per_level
        return counts.get(level, 0) if isinstance(counts, dict) else counts


def _per_level(counts: int | dict[int, int]) -> list[tuple[int | None, int]]:
    return list(counts.items()) if isinstance(counts, dict) else [(None, counts)]


def _where(level: int | None) -> str:
    return "" if level is None else f"[{level}]"


class DatasetWorldConfig(WorldSettings):
    """Real problem sets read from files (curriculum/worlds/dataset.py)."""

    default_extraction: ClassVar[Extraction] = "boxed"

    name: Literal["dataset"] = "dataset"
    seed_sets: list[str] = Field(
        default_factory=list,
        description="names in `datasets` whose problems form the seed pool (held-out questions excluded)",
    )
    heldout_sets: list[str] = Field(
        default_factory=list, description="names in `datasets` of the benchmarks held out for evaluation"
    )
    heldout_size: dict[str, int] = Field(
        default_factory=dict,
        description="problems drawn from a held-out benchmark by experiment.seed (missing or 0: all of it)",
    )
    validation_size: int = Field(
        default=0,
        ge=0,
        description="problems drawn from the seed sets by experiment.seed and kept out of training, evaluated "
        "each round apart from the held-out benchmarks (validation/*): choose settings by them (0: none)",
    )
    skip_oversized: bool = Field(
        default=False,
        description="leave out (and count, seeds/skipped_"
        "oversized) problems whose prompt does not fit the model, instead of refusing "
        "the data file",
    )
    level_edges: list[float] = Field(
        default_factory=lambda: [0.75, 0.5, 0.25, 0.125],
        description="dataset problems without a level field get level 1 + the number of edges above the base "
        "model's solve rate at screening: 1.0 -> 1, 0.6 -> 2, 0.3 -> 3, 0.2 -> 4, 0 -> 5",
    )

    @model_validator(mode="after")
    def _sets_named(self) -> DatasetWorldConfig:
        if not self.seed_sets:
            raise ValueError("world.name=dataset needs world.seed_sets (dataset names, e.g. [gsm8k_train])")
        if not self.heldout_sets:
            raise ValueError("world.name=dataset needs world.heldout_sets (e.g. [gsm8k, math500])")
        for name, size in self.heldout_size.items():
            if size < 0:
                raise ValueError(f"world.heldout_size.{name}={size} must be >= 0 (0: the whole set)")
        return self


WorldConfig = Annotated[ArithmeticWorldConfig | DatasetWorldConfig, Field(discriminator="name")]
