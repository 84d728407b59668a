"""health: the diversity of the problems each round adds, and when its collapse is warned about."""

from __future__ import annotations

from pydantic import Field

from curriculum.config.base import Section


class HealthConfig(Section):
    """Per round, over the problems the Teacher, synthesis and the Generator added (curricula/health.py):
    distinct word n-grams, near-duplicates of earlier problems (MinHash LSH), concepts and levels
    covered, length and label vote shares, as `health/...` metrics; a warning when diversity stays low."""

    enabled: bool = Field(default=True, description="compute the health/... metrics each round")
    min_distinct_2: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="diversity floor: a round whose new problems' distinct word-bigram share (health/distinct_2) "
        "is below it counts as low-diversity; 0: never",
    )
    max_near_duplicates: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="a round whose share of new problems that near-duplicate an earlier one "
        "(health/near_duplicate_rate) is above it counts as low-diversity too; 1: never",
    )
    warn_after_rounds: int = Field(
        default=3,
        ge=1,
        description="warn (one log line, and health/low_diversity=1) when this many consecutive rounds with new "
        "problems are low-diversity",
    )
    near_duplicate_similarity: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="two questions are near-duplicates from this estimated Jaccard similarity of their word shingles",
    )
    shingle: int = Field(default=3, ge=1, description="words per shingle of the MinHash (a shorter question: one)")
    num_perm: int = Field(
        default=64,
        ge=16,
        description="MinHash permutations: more estimate similarity closer, and cost memory per stored problem",
    )
    weak_vote_share: float = Field(
        default=0.75,
        ge=0,
        le=1,
        description="model-labelled new problems whose majority vote share is below this count in "
        "health/vote_share_weak (the share of weakly agreed labels)",
    )
