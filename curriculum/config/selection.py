"""selection: which problems a round trains on; loop: rounds, the attempts budget per round, and
whether sampling overlaps training (sync | async)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from curriculum.config.base import Section

if TYPE_CHECKING:
    from curriculum.config.synthesis import SynthesisConfig


class SelectionConfig(Section):
    """Which problems a round trains on. Band edges are multiples of 1/solver.attempts."""

    seed_band_low: float = Field(default=0.25, ge=0, le=1, description="seeds: base-model solve rate at least")
    seed_band_high: float = Field(default=0.75, ge=0, le=1)
    seed_candidates: int = Field(default=400, ge=1, description="seed-set candidates screened with the base model")
    band_low: float = Field(default=0.25, ge=0, le=1, description="learning band of a round")
    band_high: float = Field(default=0.75, ge=0, le=1)
    last_n_rounds: int = Field(default=2, ge=1, description="solve rates are estimated over these rounds")
    # A round's problems come from four pools (selection.select_round_problems): fresh (never
    # attempted), failed (below the band), solved (above it) and the band; the band gets what the
    # other three leave.
    fresh_fraction: float = Field(default=0.5, ge=0, le=1, description="share of slots for never-attempted problems")
    failed_fraction: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="most slots for problems below the "
        "band (the lowest level first): they teach through their reference solution",
    )
    solved_fraction: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of slots for problems above the band: keeps what the Solver can do in the training mix",
    )
    solved_by_level: bool = Field(
        default=False,
        description="split the solved slots evenly over the levels the "
        "solved pool holds (per-level replay quotas); default: a random sample",
    )
    min_vote_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="model-labelled problems whose majority vote share is below this are not trained on",
    )

    @model_validator(mode="after")
    def _shares_fit(self) -> SelectionConfig:
        total = self.fresh_fraction + self.failed_fraction + self.solved_fraction
        if total > 1 + 1e-9:
            raise ValueError(f"selection.fresh_fraction + failed_fraction + solved_fraction = {total:g} is above 1")
        return self


class LoopConfig(Section):
    rounds: int = Field(default=6, ge=0)
    problems_per_round: int = Field(
        default=64,
        ge=1,
        description="problems attempted per round (solver.attempts each); with synthesis on, "
        "synthesis.budget of them are the screened drafts, the rest are selected",
    )
    mode: Literal["sync", "async"] = Field(
        default="sync",
        description="sync: a round samples with the policy its previous round published; async: the "
        "Solvers select and sample round r+1 with policy v while the Learner trains on round r "
        "(one-step-off pipelining), so a round trains on attempts one version old (run/loop.py)",
    )
    max_staleness: int = Field(
        default=1,
        description="async only: the Learner drops (and counts, learner/stale_groups_dropped) a group "
        "sampled more than this many versions before the policy it updates (one-step-off sampling is 1 behind)",
    )

    @property
    def staleness_bound(self) -> int | None:
        """How many versions behind the Learner's policy a group may have been sampled; None in sync
        mode, where every group is sampled with the policy the Learner updates."""
        return self.max_staleness if self.mode == "async" else None

    @model_validator(mode="after")
    def _staleness_fits_the_mode(self) -> LoopConfig:
        if self.max_staleness < 1:
            raise ValueError(
                f"loop.max_staleness={self.max_staleness} must be at least 1: in async mode a round's attempts are "
                "sampled one version before the policy the Learner updates, and a lower bound would drop them all"
            )
        if self.mode == "sync" and self.max_staleness != 1:
            raise ValueError(
                f"loop.max_staleness={self.max_staleness} applies to loop.mode=async only (in sync mode every "
                "attempt is sampled with the policy the Learner updates); set loop.mode=async or remove it"
            )
        return self

    def selected_per_round(self, synthesis: SynthesisConfig) -> int:
        """Problems the curriculum selects for training: the round's attempts budget minus the drafts
        synthesis screens, so every recipe generates the same attempts (equal compute)."""
        return self.problems_per_round - (synthesis.budget if synthesis.enabled else 0)
