"""SwS problem synthesis with the Teacher's model (`synthesis.kind: llm`): one LangGraph workflow per
weak concept (category).

    concepts (one branch per weak problem) -> combine -> question (one per draft) -> label

- concepts: the model lists the concepts a weak problem tests (JSON: concepts).
- combine: each of the category's drafts (`synthesis.plan` gives the budget per category) gets
  `synthesis.concepts_per_question` concepts: its parent's first, the rest drawn from every
  concept extracted in the category; its difficulty is the parent's level.
- question: the model writes a new problem from the concepts, the category and the difficulty,
  with the parent problem as an example (JSON: question, rationale).
- label: majority vote of sampled solutions, as the LLM Teacher labels (workflow.label).

The drafts then go through the loop's decontamination and today's band screening by the Solver
(synthesis.screen): SwS keeps a synthetic problem whose solve rate is inside the band.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, Send
from pydantic import BaseModel, Field

from curriculum.config import Config
from curriculum.curricula.admission import MAX_QUESTION_CHARS, malformed
from curriculum.curricula.synthesis import Drafts, Target
from curriculum.records import Problem, RejectedDraft, problem_id
from curriculum.roles.teacher import prompts as prompt_files
from curriculum.roles.teacher.endpoint import Endpoint, EndpointError
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

NAME = "synthesis-llm"
CONCEPT_FIELDS = frozenset({"question", "answer", "category"})
QUESTION_FIELDS = frozenset({"concepts", "category", "difficulty", "example"})


class Concepts(BaseModel):
    concepts: list[str] = Field(min_length=1, max_length=8)


class Written(BaseModel):
    question: str = Field(max_length=MAX_QUESTION_CHARS, description="the new problem, self-contained")
    rationale: str = Field(default="", max_length=1000)


@dataclass
class SynthesisPrompts:
    concepts: Prompt
    question: Prompt


def load_prompts(config: Config, base: Path | None = None) -> SynthesisPrompts:
    prompts = config.synthesis.prompts
    return SynthesisPrompts(
        concepts=prompt_files.load(prompts.concepts, CONCEPT_FIELDS, base),
        question=prompt_files.load(prompts.question, QUESTION_FIELDS, base),
    )


@dataclass(frozen=True)
class Slot:
    index: int  # of the target in the round's plan
    parent: Problem
    concepts: tuple[str, ...]


class SynthState(TypedDict, total=False):
    category: str
    targets: list[tuple[int, Target]]
    parent: Problem  # the payload of one concepts branch
    slot: Slot  # the payload of one question branch
    question: str  # the payload of one label branch (with slot)
    concepts: Annotated[dict[str, list[str]], lambda a, b: {**a, **b}]
    slots: list[Slot]
    labelled: Annotated[list[tuple[Slot, str, Label]], operator.add]
    rejected: Annotated[list[RejectedDraft], operator.add]


def synthesize(
    config: Config,
    prompts: SynthesisPrompts,
    labelling: Labelling,
    endpoint: Endpoint,
    targets: Sequence[Target],
    known: frozenset[str],
    round: int,
    seed: int,
) -> Drafts:
    """Labelled drafts for `targets` (the round's synthesis plan), with every call audited."""
    log = CallLog(round=round, source="synthesis")
    by_category: dict[str, list[tuple[int, Target]]] = {}
    for index, target in enumerate(targets):
        by_category.setdefault(target.concept, []).append((index, target))
    graph = _graph(config, prompts, labelling, endpoint, log, known, seed)
    inputs = [
        SynthState(category=c, targets=ts, concepts={}, labelled=[], rejected=[])
        for c, ts in sorted(by_category.items())
    ]
    states = graph.batch(inputs, config={"max_concurrency": endpoint.config.max_concurrency})
    if log.endpoint_down():
        raise EndpointError(
            f"the Teacher's endpoint {endpoint.name} answered none of the {len(log.calls)} calls "
            f"of round {round}'s synthesize stage ({log.calls[-1].error}); `curriculum resume RUN_DIR` "
            "retries the stage"
        )
    out = Drafts(calls=list(log.calls))
    seen = set(known)
    labelled = sorted((item for state in states for item in state.get("labelled", [])), key=lambda x: x[0].index)
    for slot, question, result in labelled:
        problem = Problem(
            question=question,
            answer=result.vote.answer or "",
            solution=result.solution,
            source="synthesis",
            parent_id=slot.parent.id,
            family=slot.parent.family,
            level=slot.parent.level,
            concepts=list(dict.fromkeys([slot.concepts[0], *slot.concepts])),
            round_created=round,
            created_by=NAME,
            answer_source="model",
            vote_share=result.vote.share,
        )
        if problem.id in seen:  # two categories wrote the same question
            out.rejected.append(_reject(slot.parent, question, "duplicate", "written twice this round", round))
            continue
        seen.add(problem.id)
        out.problems.append(problem)
    out.rejected.extend(r for state in states for r in state.get("rejected", []))
    return out


def _reject(parent: Problem, text: str, reason: str, detail: str, round: int) -> RejectedDraft:
    return RejectedDraft(
        source="synthesis", parent_id=parent.id, text=text, reason=reason, detail=detail, round=round, created_by=NAME
    )


def _graph(
    config: Config,
    prompts: SynthesisPrompts,
    labelling: Labelling,
    endpoint: Endpoint,
    log: CallLog,
    known: frozenset[str],
    seed: int,
) -> Any:
    policy, max_tries = retry_policy(endpoint.config), endpoint.config.max_attempts
    per_question = config.synthesis.concepts_per_question

    def fan_out_concepts(state: SynthState) -> list[Send]:
        parents = {t.parent.id: t.parent for _, t in state["targets"]}
        return [Send("concepts", {"category": state["category"], "parent": p}) for p in parents.values()]

    def concepts(state: SynthState, runtime: Runtime) -> dict[str, Any]:
        parent, attempt = state["parent"], attempt_of(runtime)
        try:
            _, found = ask(
                endpoint,
                prompts.concepts,
                {"question": parent.question, "answer": parent.answer, "category": state["category"]},
                log,
                node="concepts",
                parent_id=parent.id,
                attempt=attempt,
                schema=Concepts,
                seed=call_seed(seed, log.round, "concepts", parent.id, attempt),
            )
        except HANDLED as exc:
            give_up_or_retry(exc, attempt, max_tries)
            return {
                "concepts": {parent.id: []},
                "rejected": [
                    _reject(
                        parent,
                        "",
                        reason_of(exc),
                        f"concepts gave up after {attempt} tries: {describe(exc)}",
                        log.round,
                    )
                ],
            }
        names = [" ".join(c.split())[:100] for c in found.concepts if c.strip()]
        return {"concepts": {parent.id: list(dict.fromkeys(names))}}

    def combine(state: SynthState) -> dict[str, Any]:
        category, extracted = state["category"], state.get("concepts", {})
        pool = list(dict.fromkeys(c for _, t in state["targets"] for c in extracted.get(t.parent.id, [])))
        slots = []
        for index, target in state["targets"]:
            rng = random.Random(call_seed(seed, log.round, "combine", index))
            own = extracted.get(target.parent.id) or [category]
            others = [c for c in pool if c != own[0]]
            chosen = [own[0], *rng.sample(others, min(per_question - 1, len(others)))]
            slots.append(Slot(index, target.parent, tuple(chosen)))
        return {"slots": slots}

    def fan_out_questions(state: SynthState) -> list[Send] | str:
        return [Send("question", {"category": state["category"], "slot": s}) for s in state.get("slots", [])] or END

    def question(state: SynthState, runtime: Runtime) -> Command:
        slot, attempt = state["slot"], attempt_of(runtime)
        values = {
            "concepts": "\n".join(f"- {c}" for c in slot.concepts),
            "category": state["category"],
            "difficulty": "unknown" if slot.parent.level is None else str(slot.parent.level),
            "example": slot.parent.question,
        }
        try:
            _, written = ask(
                endpoint,
                prompts.question,
                values,
                log,
                node="question",
                parent_id=slot.parent.id,
                attempt=attempt,
                schema=Written,
                drafts=lambda w: [problem_id(w.question)],
                seed=call_seed(seed, log.round, "question", slot.index, attempt),
            )
        except HANDLED as exc:
            give_up_or_retry(exc, attempt, max_tries)
            return Command(
                update={
                    "rejected": [
                        _reject(
                            slot.parent,
                            "",
                            reason_of(exc),
                            f"question gave up after {attempt} tries: {describe(exc)}",
                            log.round,
                        )
                    ]
                }
            )
        verdict = malformed(Problem(question=written.question, answer="?", source="synthesis"))
        if verdict is None and problem_id(written.question) in known:
            verdict = ("duplicate", "already known")
        if verdict is not None:
            return Command(
                update={
                    "rejected": [
                        _reject(
                            slot.parent,
                            written.question,
                            verdict[0],
                            f"for {', '.join(slot.concepts)}: {verdict[1]}",
                            log.round,
                        )
                    ]
                }
            )
        return Command(goto=Send("label", {"slot": slot, "question": written.question}))

    def label_draft(state: SynthState, runtime: Runtime) -> dict[str, Any]:
        slot, text, attempt = state["slot"], state["question"], attempt_of(runtime)
        try:
            result = label(
                labelling,
                text,
                log,
                parent_id=slot.parent.id,
                draft_id=problem_id(text),
                attempt=attempt,
                seed=call_seed(seed, log.round, "label", attempt),
            )
        except HANDLED as exc:
            give_up_or_retry(exc, attempt, max_tries)
            return {
                "rejected": [
                    _reject(
                        slot.parent,
                        text,
                        reason_of(exc),
                        f"label gave up after {attempt} tries: {describe(exc)}",
                        log.round,
                    )
                ]
            }
        why = no_consensus(result.vote, labelling.min_agreement)
        if why is not None:
            return {"rejected": [_reject(slot.parent, text, "no_consensus", why, log.round)]}
        return {"labelled": [(slot, text, result)]}

    builder = StateGraph(SynthState)
    builder.add_node("concepts", concepts, retry_policy=policy)
    builder.add_node("combine", combine)
    builder.add_node("question", question, retry_policy=policy, destinations=("label",))
    builder.add_node("label", label_draft, retry_policy=policy)
    builder.add_conditional_edges(START, fan_out_concepts, ["concepts"])
    builder.add_edge("concepts", "combine")
    builder.add_conditional_edges("combine", fan_out_questions, ["question", END])
    builder.add_edge("label", END)
    return builder.compile(name="synthesis")
