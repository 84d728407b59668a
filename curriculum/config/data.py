"""datasets: how each problem set is read; decontamination: which evaluation sets drafts are checked against."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from curriculum.config.base import Extraction, Section


class DatasetSpec(Section):
    """How to read one problem set: where it is and which fields hold what."""

    path: str = Field(description="a .jsonl or .parquet file, or a Hugging Face dataset name when format=hf")
    format: Literal["auto", "jsonl", "parquet", "hf"] = "auto"
    split: str = "test"
    question_field: str = Field(
        default="question", description="a field name, or a template of fields such as '{Body} {Question}' (SVAMP)"
    )
    answer_field: str = "answer"
    extraction: Extraction = Field(default="none", description="how to pull the final answer out of answer_field")
    # A model's answer is read by the world's rule (world.answer_extraction), not per data set.
    solution_field: str | None = Field(default=None, description="a worked reference solution, if any")
    subject_field: str | None = None
    level_field: str | None = None


class DecontaminationConfig(Section):
    """Teacher and Generator problems whose n-grams overlap an evaluation set are rejected."""

    enabled: bool = True
    eval_sets: list[str] = Field(default_factory=list, description="names in `datasets` to check against")
    heldout: bool = Field(default=True, description="also check against the world's held-out problems")
    ngram: int = Field(default=8, ge=1, description="n of the word n-grams compared")
    threshold: float = Field(default=0.5, gt=0, le=1, description="share of a draft's n-grams that makes a match")
