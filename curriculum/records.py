"""Records that flow between the roles and land in the store.

Every id derives from content, so a retried write of the same record is a no-op
in the store, never a duplicate. Records are frozen: build a new one to change it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

# "synthesis": weakness-driven (or uniform) problem synthesis, SwS (curricula/synthesis.py).
ProblemSource = Literal["seed", "teacher", "generator", "dataset", "synthesis"]
# Where a reference answer came from: computed by the world's oracle, given by a dataset,
# or voted by a model (an LLM Teacher's majority); model labels are audited (label_quality.py).
AnswerSource = Literal["oracle", "dataset", "model"]
DraftSource = Literal["teacher", "generator", "synthesis"]


def content_id(*parts: Any, length: int = 16) -> str:
    """A stable hex id from the JSON encoding of ``parts``."""
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def normalize_question(text: str) -> str:
    """The form of a question that decides its identity: whitespace collapsed."""
    return " ".join(text.split())


def problem_id(question: str) -> str:
    return "p" + content_id(normalize_question(question))


def attempt_id(problem: str, policy_version: int, sample_index: int, round: int) -> str:
    # The round is part of the identity: the same policy may sample the same problem again in
    # a later round (seed screening in round 0, then round 1, both with version 0) with another
    # seed, and that is a new attempt, not a retried write of the old one.
    return "a" + content_id(problem, policy_version, sample_index, round)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Problem(Record):
    """A question with its reference answer and where it came from."""

    id: str = ""
    question: str
    answer: str
    solution: str = ""
    source: ProblemSource
    parent_id: str | None = None
    family: str = ""
    level: int | None = None
    concepts: list[str] = Field(default_factory=list)
    knobs: dict[str, int] = Field(default_factory=dict)
    round_created: int = 0
    created_by: str = ""
    model_version: int | None = None  # Generator version for source="generator"
    answer_source: AnswerSource = "oracle"
    vote_share: float | None = None  # answer_source="model": share of the sampled solutions that voted for it

    @model_validator(mode="after")
    def _derive_id(self) -> Problem:
        if not self.id:
            object.__setattr__(self, "id", problem_id(self.question))
        return self


class Attempt(Record):
    """One sampled completion for a problem by one policy version, graded."""

    id: str = ""
    problem_id: str
    policy_version: int
    sample_index: int
    round: int
    completion: str
    extracted_answer: str | None
    correct: bool
    reward: float
    num_tokens: int
    logprob: float | None = None  # sum of sampling log-probs of the completion
    created_by: str = ""
    # The sampled tokens (stop token included) and the sampling log-prob of each: what a learner
    # trains on without tokenizing `completion` again (GRPO), and the rollout log-probs TRL's
    # importance-sampling correction needs. Empty for attempts stored before schema version 5.
    token_ids: list[int] = Field(default_factory=list)
    token_logprobs: list[float] = Field(default_factory=list)

    @model_validator(mode="after")
    def _derive_id(self) -> Attempt:
        if not self.id:
            object.__setattr__(
                self, "id", attempt_id(self.problem_id, self.policy_version, self.sample_index, self.round)
            )
        return self


class PreferencePair(Record):
    """A DPO pair: a preferred and a dispreferred completion for one prompt."""

    id: str = ""
    problem_id: str
    policy_version: int
    round: int
    prompt: str
    chosen: str
    rejected: str
    chosen_is_reference: bool = False

    @model_validator(mode="after")
    def _derive_id(self) -> PreferencePair:
        if not self.id:
            object.__setattr__(
                self, "id", "d" + content_id(self.problem_id, self.policy_version, self.chosen, self.rejected)
            )
        return self


class PolicyVersion(Record):
    """A published student policy: version v was trained from version v-1."""

    version: int
    round: int
    parent_version: int | None
    adapter_path: str
    algorithm: str
    metrics: dict[str, float] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utc_now)


class RejectedDraft(Record):
    """A Teacher or Generator draft that did not become a problem, and why."""

    id: str = ""
    source: DraftSource
    parent_id: str | None
    text: str
    reason: str
    detail: str = ""
    round: int
    created_by: str = ""

    @model_validator(mode="after")
    def _derive_id(self) -> RejectedDraft:
        if not self.id:
            object.__setattr__(
                self, "id", "r" + content_id(self.source, self.parent_id, self.text, self.reason, self.round)
            )
        return self


class ModelCall(Record):
    """One call of an LLM workflow (the LLM Teacher, LLM synthesis) to a chat endpoint, audited.

    `drafts` links it to the problems it wrote (node write/question) or labelled (node label), by
    problem id; `parent_id` is the problem the workflow worked on. The prompt is stored rendered
    (bounded in length) with its hash and the template it came from (`template`: id@sha).
    """

    id: str = ""
    round: int
    source: DraftSource
    node: str
    parent_id: str | None
    template: str
    prompt_hash: str
    prompt: str
    output: str
    parsed: str = ""  # JSON of the parsed reply ("" when it did not parse)
    error: str = ""  # "" for a good reply, else "<reason>: <what happened>"
    drafts: list[str] = Field(default_factory=list)
    latency_s: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    endpoint: str = ""  # model @ base_url (never a key)
    attempt: int = 1  # the workflow step's try (retries of transport and parse errors)
    sample_index: int = 0
    created_at: datetime = Field(default_factory=utc_now)

    @model_validator(mode="after")
    def _derive_id(self) -> ModelCall:
        if not self.id:
            object.__setattr__(
                self,
                "id",
                "c"
                + content_id(
                    self.round,
                    self.source,
                    self.node,
                    self.parent_id,
                    self.prompt_hash,
                    self.attempt,
                    self.sample_index,
                ),
            )
        return self


class RoundStats(Record):
    """Metrics and stage timings of one finished round."""

    round: int
    policy_version: int
    metrics: dict[str, float] = Field(default_factory=dict)
    seconds: dict[str, float] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utc_now)


class StageRecord(Record):
    """A completed stage of a round, stored in the same transaction as the stage's records.

    `state` is the JSON of what the round has computed so far (`loop.RoundState`): a resumed
    run continues after the last stage that has one. Its id is the round and stage.
    """

    id: str = ""
    round: int
    stage: str
    state: str
    created_at: datetime = Field(default_factory=utc_now)

    @model_validator(mode="after")
    def _derive_id(self) -> StageRecord:
        if not self.id:
            object.__setattr__(self, "id", f"s{self.round:06d}:{self.stage}")
        return self


def group_by_problem(attempts: Iterable[Attempt]) -> dict[str, list[Attempt]]:
    """Attempts per problem id, in their order."""
    groups: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        groups.setdefault(attempt.problem_id, []).append(attempt)
    return groups


class SolveRate(NamedTuple):
    """How often a problem was solved: `correct` of `attempts`."""

    attempts: int
    correct: int
    rate: float

    @classmethod
    def of(cls, attempts: Sequence[Attempt]) -> SolveRate:
        correct = sum(a.correct for a in attempts)
        return cls(len(attempts), correct, correct / len(attempts))


def rate_within(rate: float, low: float, high: float) -> bool:
    """low <= rate <= high, allowing for float rounding at the edges (estimates are c/k)."""
    return low - 1e-9 <= rate <= high + 1e-9


@dataclass(frozen=True)
class GradedGroup:
    """One problem with its graded attempts, and the prompt they answered ("" where it is not needed):
    a round's GRPO group or source of DPO pairs and SFT examples, and a failure the Teacher rewrites.
    Not stored (its attempts are); handed between the loop and the roles."""

    problem: Problem
    attempts: tuple[Attempt, ...]
    prompt: str = ""

    @property
    def solve_rate(self) -> float:
        return sum(a.correct for a in self.attempts) / len(self.attempts) if self.attempts else 0.0
