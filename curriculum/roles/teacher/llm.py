"""The LLM Teacher (`teacher.kind: llm`): a LangGraph workflow per failed problem.

    diagnose -> write -> label (one branch per draft) -> the loop's admission gate

- diagnose: the model reads the problem, its reference answer and the Solver's failed attempts
  and says what went wrong and which concept the problem tests (JSON: error, concept).
- write: `teacher.variants_per_failure` new problems aimed at that error, each of the kind the
  symbolic Teacher would choose (`mutations_for`: harder and sibling for a failure the Solver
  partly solves, sibling and easier for one out of reach); JSON: problems [{question, rationale}].
  Empty, over-long or unprintable drafts and copies of known problems are rejected here, before
  any label is paid for.
- label: `teacher.labels.samples` solutions sampled from the labeller (the same model unless
  `teacher.labels.endpoint` names another), answers read with the verifier's extraction and
  grouped by equivalence; a draft is kept with at least `min_agreement` votes (SwS: 4 of 8),
  else rejected `no_consensus`. A kept draft's answer is the majority's (`answer_source="model"`,
  `vote_share`), its solution a sampled solution that voted for it.

Each step retries transport and parse errors and then gives up with a reason (workflow.py), so
the round completes; an endpoint that answers no call at all fails the stage in one line (and
`curriculum resume` retries it). Every call is audited (`TeachingResult.calls` -> the calls table).
`synthesize` is SwS with this model (llm_synthesis.py); `label` votes the answers of the Generator's
drafts on a world without an oracle with the same labeller (llm_labels.py).

Why one module of ~500 lines: the graph's three nodes close over one Teacher's state (its
connection, call log and known ids) and are read together as one workflow; the shared machinery is
already apart (workflow.py: retries, votes, audit; endpoint.py; prompts.py).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import BaseModel, Field

from curriculum.config import Config, ConfigError, LLMTeacherConfig
from curriculum.curricula.admission import MAX_QUESTION_CHARS, malformed
from curriculum.curricula.synthesis import Drafts, Target
from curriculum.records import Problem, RejectedDraft, problem_id
from curriculum.roles.teacher import prompts as prompt_files
from curriculum.roles.teacher.base import Failure, Teacher, TeachingResult, mutations_for
from curriculum.roles.teacher.endpoint import Endpoint, EndpointError, api_key, chat_model, endpoint_name
from curriculum.roles.teacher.prompts import Prompt
from curriculum.roles.teacher.workflow import (
    HANDLED,
    CallLog,
    Label,
    Labelling,
    ask,
    attempt_of,
    call_seed,
    describe,
    give_up_or_retry,
    label,
    no_consensus,
    reason_of,
    retry_policy,
)
from curriculum.worlds import default_level_after

NAME = "teacher-llm"
ATTEMPT_CHARS = 600  # of each failed attempt shown to the Teacher
MAX_DRAFTS = 16  # problems one write reply may hold

# Fields each step fills in its prompt (a template may use any of them).
DIAGNOSE_FIELDS = frozenset({"question", "reference", "solution", "attempts", "solve_rate", "concepts"})
WRITE_FIELDS = DIAGNOSE_FIELDS | {"error", "concept", "variants", "kinds"}
LABEL_FIELDS = frozenset({"question"})


class Diagnosis(BaseModel):
    error: str = Field(max_length=500, description="what the failed attempts got wrong")
    concept: str = Field(max_length=100, description="the concept or skill the problem tests")


class WrittenProblem(BaseModel):
    question: str = Field(max_length=MAX_QUESTION_CHARS, description="the new problem, self-contained")
    rationale: str = Field(default="", max_length=1000, description="how it targets the error")


class Written(BaseModel):
    problems: list[WrittenProblem] = Field(min_length=1, max_length=MAX_DRAFTS)


@dataclass(frozen=True)
class Draft:
    index: int
    kind: str
    question: str
    rationale: str
    concept: str

    @property
    def id(self) -> str:
        return problem_id(self.question)


class TeachState(TypedDict, total=False):
    failure: Failure
    kinds: list[str]
    diagnosis: Diagnosis | None
    drafts: list[Draft]
    draft: Draft  # the payload of one label branch
    labelled: Annotated[list[tuple[Draft, Label]], operator.add]
    rejected: Annotated[list[RejectedDraft], operator.add]


@dataclass
class TeacherPrompts:
    diagnose: Prompt
    write: Prompt
    label: Prompt


def llm_settings(config: Config) -> LLMTeacherConfig:
    """The LLM Teacher's settings (`teacher.kind: llm`); the config refuses a recipe that needs them
    without them first."""
    settings = config.llm_teacher
    if settings is None:
        raise ConfigError("the Teacher's model is teacher.kind=llm's: set teacher.kind=llm and teacher.endpoint")
    return settings


def load_prompts(config: Config, base: Path | None = None) -> TeacherPrompts:
    """The Teacher's prompt files, checked against the fields each step fills (`base`: a run's copies)."""
    teacher = llm_settings(config)
    return TeacherPrompts(
        diagnose=prompt_files.load(teacher.prompts.diagnose, DIAGNOSE_FIELDS, base),
        write=prompt_files.load(teacher.prompts.write, WRITE_FIELDS, base),
        label=prompt_files.load(teacher.labels.prompt, LABEL_FIELDS, base),
    )


def prompt_paths(config: Config) -> dict[str, str]:
    """Every prompt file the recipe uses, by role: what the run copies and logs."""
    teacher = llm_settings(config)
    paths = {
        "teacher.diagnose": teacher.prompts.diagnose,
        "teacher.write": teacher.prompts.write,
        "label": teacher.labels.prompt,
    }
    if config.synthesis.enabled and config.synthesis.kind == "llm":
        paths.update(
            {
                "synthesis.concepts": config.synthesis.prompts.concepts,
                "synthesis.question": config.synthesis.prompts.question,
            }
        )
    return paths


@dataclass
class Connection:
    """The endpoints of a run: the Teacher's and the labeller's (maybe the same server)."""

    teacher: Endpoint
    labeller: Endpoint

    def probe(self) -> None:
        self.teacher.probe()
        if self.labeller.base_url != self.teacher.base_url:
            self.labeller.probe()


def connector(config: Config, served: Callable[[], Any] | None = None) -> Callable[[], Connection]:
    """How the Teacher reaches its model: `teacher.endpoint`, or the run's own server (`served()`
    starts it when it is down and says where it is: base_url, model, api_key). The clients are
    built once per address, in the process that calls them (the key never leaves it)."""

    settings = llm_settings(config)
    teacher, labels = settings.endpoint, settings.labels
    built: dict[str, Connection] = {}

    def connect() -> Connection:
        if served is not None:
            where = served()
            base_url, model, key = where.base_url, where.model, where.api_key
        else:
            base_url, model, key = teacher.base_url, teacher.model, api_key(teacher)
        # The config requires both of an endpoint (teacher.endpoint, teacher.labels.endpoint) or a server.
        assert base_url is not None and model is not None
        if base_url not in built:
            writer = Endpoint(
                chat_model(teacher, base_url, model, teacher.temperature, teacher.max_tokens, key),
                endpoint_name(model, base_url),
                teacher,
                base_url,
                key,
            )
            if labels.endpoint is None:  # the same server, the labeller's sampling
                labeller = writer.with_model(
                    chat_model(teacher, base_url, model, labels.temperature, labels.max_tokens, key)
                )
            else:
                other = labels.endpoint
                assert other.base_url is not None and other.model is not None
                other_key = api_key(other, "teacher.labels.endpoint")
                labeller = Endpoint(
                    chat_model(other, other.base_url, other.model, labels.temperature, labels.max_tokens, other_key),
                    endpoint_name(other.model, other.base_url),
                    other,
                    other.base_url,
                    other_key,
                )
            built[base_url] = Connection(writer, labeller)
        return built[base_url]

    return connect


@dataclass
class LLMTeacher(Teacher):
    """`teach` (Socratic-Zero with an LLM) and `synthesize` (SwS with an LLM) over one connection.

    `connect()` gives the endpoints (after starting the run's own server, when `teacher.serve` asks
    for one); `equivalent` compares two answers (the verifier); `tracing` wraps each stage's graph
    runs so MLflow traces them next to the run.
    """

    config: Config
    prompts: TeacherPrompts
    connect: Callable[[], Connection]
    equivalent: Callable[[list[tuple[str, str]]], list[bool]]
    name: str = NAME
    synthesis_prompts: Any = None  # llm_synthesis.SynthesisPrompts when synthesis.kind=llm
    tracing: Callable[..., Any] | None = None  # (stage, round) -> a context manager
    close_hook: Callable[[], None] | None = None

    # -- the loop's calls

    def teach(self, failures: Sequence[Failure], known_ids: Iterable[str], round: int) -> TeachingResult:
        cfg = self.config.teacher
        chosen = sorted(failures, key=lambda f: (f.solve_rate, f.problem.id))[: cfg.max_failures]
        if not chosen:
            return TeachingResult()
        connection = self._connected()
        log = CallLog(round=round, source="teacher")
        known = frozenset(known_ids)
        graph = self.graph(connection, log, known)
        inputs = [TeachState(failure=f, kinds=self._kinds(f), labelled=[], rejected=[]) for f in chosen]
        with self._traced("teach", round):
            states = graph.batch(inputs, config={"max_concurrency": connection.teacher.config.max_concurrency})
        result = TeachingResult(calls=list(log.calls))
        if log.endpoint_down():
            raise EndpointError(
                f"the Teacher's endpoint {connection.teacher.name} answered none of the "
                f"{len(log.calls)} calls of round {round}'s teach stage ({log.calls[-1].error}); "
                "`curriculum resume RUN_DIR` retries the stage"
            )
        for state in states:
            parent = state["failure"].problem
            for draft, labelled in sorted(state.get("labelled", []), key=lambda item: item[0].index):
                result.problems.append(self._problem(parent, draft, labelled, round))
            result.rejected.extend(state.get("rejected", []))
        return result

    def synthesize(self, targets: Sequence[Target], known_ids: Iterable[str], round: int, seed: int) -> Drafts:
        """SwS drafts for `targets`, labelled by majority vote (llm_synthesis.py)."""
        from curriculum.roles.teacher.llm_synthesis import synthesize

        if not targets:
            return Drafts()
        connection = self._connected()
        with self._traced("synthesize", round):
            return synthesize(
                self.config,
                self.synthesis_prompts,
                self._labelling(connection, self.prompts.label),
                connection.teacher,
                targets,
                frozenset(known_ids),
                round,
                seed,
            )

    def label(
        self, drafts: Sequence[Problem], known_ids: Iterable[str], round: int, references: Sequence[Problem] = ()
    ) -> TeachingResult:
        """The Generator's drafts labelled by this Teacher's labeller and vote (llm_labels.py), and the
        vote on each of `references` against its reference answer."""
        from curriculum.roles.teacher.llm_labels import label_drafts

        if not drafts and not references:
            return TeachingResult()
        connection = self._connected()
        with self._traced("distil", round):  # the loop stage that asks for the labels
            return label_drafts(
                self._labelling(connection, self.prompts.label),
                connection.labeller.config,
                drafts,
                frozenset(known_ids),
                references,
                "generator",
                round,
                self.config.experiment.seed,
            )

    def close(self) -> None:
        if self.close_hook is not None:
            self.close_hook()

    # -- the graph

    def graph(self, connection: Connection, log: CallLog, known: frozenset[str]) -> Any:
        """The compiled workflow of one failure (module docstring)."""
        seed = self.config.experiment.seed
        endpoint, prompts = connection.teacher, self.prompts
        labelling = self._labelling(connection, prompts.label)
        policy = retry_policy(endpoint.config)
        max_tries = endpoint.config.max_attempts

        def reject(parent: Problem, text: str, reason: str, detail: str) -> RejectedDraft:
            return RejectedDraft(
                source="teacher",
                parent_id=parent.id,
                text=text,
                reason=reason,
                detail=detail,
                round=log.round,
                created_by=self.name,
            )

        def diagnose(state: TeachState, runtime: Runtime) -> dict[str, Any]:
            failure, attempt = state["failure"], attempt_of(runtime)
            try:
                _, diagnosis = ask(
                    endpoint,
                    prompts.diagnose,
                    self._fields(failure),
                    log,
                    node="diagnose",
                    parent_id=failure.problem.id,
                    attempt=attempt,
                    schema=Diagnosis,
                    seed=call_seed(seed, log.round, "diagnose", failure.problem.id, attempt),
                )
            except HANDLED as exc:
                give_up_or_retry(exc, attempt, max_tries)
                return {
                    "diagnosis": None,
                    "rejected": [
                        reject(
                            failure.problem,
                            "",
                            reason_of(exc),
                            f"diagnose gave up after {attempt} tries, no drafts written: {describe(exc)}",
                        )
                    ],
                }
            return {"diagnosis": diagnosis}

        def write(state: TeachState, runtime: Runtime) -> dict[str, Any]:
            failure, kinds, diagnosis = state["failure"], state["kinds"], state["diagnosis"]
            assert diagnosis is not None  # the graph diagnoses before it writes
            attempt = attempt_of(runtime)
            values = {
                **self._fields(failure),
                "error": diagnosis.error,
                "concept": diagnosis.concept,
                "variants": len(kinds),
                "kinds": self._kinds_text(kinds),
            }
            try:
                _, written = ask(
                    endpoint,
                    prompts.write,
                    values,
                    log,
                    node="write",
                    parent_id=failure.problem.id,
                    attempt=attempt,
                    seed=call_seed(seed, log.round, "write", failure.problem.id, attempt),
                    schema=Written,
                    drafts=lambda w: [problem_id(p.question) for p in w.problems[: len(kinds)]],
                )
            except HANDLED as exc:
                give_up_or_retry(exc, attempt, max_tries)
                return {
                    "drafts": [],
                    "rejected": [
                        reject(
                            failure.problem, "", reason_of(exc), f"write gave up after {attempt} tries: {describe(exc)}"
                        )
                    ],
                }
            drafts, rejected, seen = [], [], set(known)
            for index, (kind, item) in enumerate(zip(kinds, written.problems)):
                draft = Draft(index, kind, item.question, item.rationale, diagnosis.concept)
                verdict = malformed(Problem(question=draft.question, answer="?", source="teacher"))
                if verdict is None and draft.id in seen:
                    verdict = ("duplicate", "already known" if draft.id in known else "written twice for this failure")
                if verdict is not None:
                    rejected.append(
                        reject(failure.problem, draft.question, verdict[0], f"{kind} variant: {verdict[1]}")
                    )
                    continue
                seen.add(draft.id)
                drafts.append(draft)
            return {"drafts": drafts, "rejected": rejected}

        def label_draft(state: TeachState, runtime: Runtime) -> dict[str, Any]:
            failure, draft, attempt = state["failure"], state["draft"], attempt_of(runtime)
            try:
                result = label(
                    labelling,
                    draft.question,
                    log,
                    parent_id=failure.problem.id,
                    draft_id=draft.id,
                    attempt=attempt,
                    seed=call_seed(seed, log.round, "label", attempt),
                )
            except HANDLED as exc:
                give_up_or_retry(exc, attempt, max_tries)
                return {
                    "rejected": [
                        reject(
                            failure.problem,
                            draft.question,
                            reason_of(exc),
                            f"label gave up after {attempt} tries: {describe(exc)}",
                        )
                    ]
                }
            why = no_consensus(result.vote, labelling.min_agreement)
            if why is not None:
                detail = f"{draft.kind} variant; {why}"
                return {"rejected": [reject(failure.problem, draft.question, "no_consensus", detail)]}
            return {"labelled": [(draft, result)]}

        def after_diagnose(state: TeachState) -> str:
            return "write" if state.get("diagnosis") is not None else END

        def to_labels(state: TeachState) -> list[Send] | str:
            return [Send("label", {"failure": state["failure"], "draft": d}) for d in state.get("drafts", [])] or END

        builder = StateGraph(TeachState)
        builder.add_node("diagnose", diagnose, retry_policy=policy)
        builder.add_node("write", write, retry_policy=policy)
        builder.add_node("label", label_draft, retry_policy=policy)
        builder.add_edge(START, "diagnose")
        builder.add_conditional_edges("diagnose", after_diagnose, ["write", END])
        builder.add_conditional_edges("write", to_labels, ["label", END])
        builder.add_edge("label", END)
        return builder.compile(name="teacher")

    # -- helpers

    def _connected(self) -> Connection:
        connection = self.connect()
        connection.probe()  # a dead endpoint fails the stage at once, in one line
        return connection

    def _labelling(self, connection: Connection, prompt: Prompt) -> Labelling:
        labels = llm_settings(self.config).labels
        return Labelling(
            connection.labeller, prompt, labels.samples, labels.min_agreement, labels.extraction, self.equivalent
        )

    def _traced(self, stage: str, round: int) -> Any:
        from contextlib import nullcontext

        return self.tracing(stage, round) if self.tracing is not None else nullcontext()

    def _kinds(self, failure: Failure) -> list[str]:
        mutations = mutations_for(failure, self.config.teacher)
        return [mutations[i % len(mutations)] for i in range(self.config.teacher.variants_per_failure)]

    def _kinds_text(self, kinds: list[str]) -> str:
        meaning = self.prompts.write.texts
        return "\n".join(f"{i + 1}. {kind}: {meaning.get(kind, kind)}" for i, kind in enumerate(kinds))

    def _fields(self, failure: Failure) -> dict[str, Any]:
        problem = failure.problem
        shown = [a for a in failure.attempts if not a.correct][: llm_settings(self.config).attempts_shown]
        attempts = (
            "\n\n".join(
                f"Attempt {i + 1} (answered {a.extracted_answer or 'nothing'}):\n{_clip(a.completion, ATTEMPT_CHARS)}"
                for i, a in enumerate(shown)
            )
            or "(none shown)"
        )
        correct = sum(a.correct for a in failure.attempts)
        return {
            "question": problem.question,
            "reference": problem.answer,
            "solution": problem.solution or "(none)",
            "attempts": attempts,
            "solve_rate": f"{correct}/{len(failure.attempts)}",
            "concepts": ", ".join(problem.concepts) or problem.family or "(unknown)",
        }

    def _problem(self, parent: Problem, draft: Draft, labelled: Label, round: int) -> Problem:
        # The model's variant of a max-level problem may well be harder than the world's levels go.
        level = None if parent.level is None else default_level_after(draft.kind, parent.level)
        return Problem(
            question=draft.question,
            answer=labelled.vote.answer or "",
            solution=labelled.solution,
            source="teacher",
            parent_id=parent.id,
            family=parent.family,
            level=level,
            concepts=list(parent.concepts) or [draft.concept],
            round_created=round,
            created_by=self.name,
            answer_source="model",
            vote_share=labelled.vote.share,
        )


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width] + " [...]"
