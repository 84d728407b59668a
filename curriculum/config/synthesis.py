"""synthesis: SwS problem synthesis aimed at weak concepts; weakness: how weaknesses are mined."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from curriculum.config.base import Mutation, Section, mutation_kinds


class WeaknessConfig(Section):
    """SwS weakness mining over each problem's accuracy per round (from the store's attempts)."""

    threshold: float = Field(default=0.5, gt=0, le=1, description="weak: best accuracy in the window below this")
    window: int = Field(default=3, ge=2, description="the last rounds (in which the problem was attempted) looked at")
    min_rounds: int = Field(default=2, ge=2, description="rounds needed in the window to fit a slope")

    @model_validator(mode="after")
    def _window_holds_min_rounds(self) -> WeaknessConfig:
        if self.min_rounds > self.window:
            raise ValueError(f"weakness.min_rounds={self.min_rounds} is above weakness.window={self.window}")
        return self


class SynthesisPrompts(Section):
    concepts: str = "prompts/synthesis_concepts.yaml"
    question: str = "prompts/synthesis_question.yaml"


class SynthesisConfig(Section):
    """New problems aimed at concepts, screened by the Solver's solve rate (SwS)."""

    enabled: bool = False
    budget: int = Field(
        default=16, ge=1, description="drafts per round; each is screened with solver.attempts attempts"
    )
    concepts: Literal["weakness", "uniform"] = Field(
        default="weakness",
        description="weakness: budget per concept by failure ratio (SwS); "
        "uniform: concepts drawn uniformly (the random-synthesis baseline)",
    )
    band_low: float = Field(default=0.25, ge=0, le=1, description="keep a draft whose solve rate is at least")
    band_high: float = Field(default=0.75, ge=0, le=1)
    mutations: list[Mutation] = Field(
        default_factory=mutation_kinds("sibling", "harder"),
        min_length=1,
        description="how a draft varies its parent problem, in turn (kind: symbolic)",
    )
    kind: Literal["symbolic", "llm"] = Field(
        default="symbolic",
        description="symbolic: the world's mutations and "
        "oracle; llm: the Teacher's model writes and labels (teacher.endpoint)",
    )
    concepts_per_question: int = Field(default=2, ge=1, description="llm: concepts combined in one new question")
    prompts: SynthesisPrompts = SynthesisPrompts()
