"""Labels for drafts another role wrote: the Generator's problems on a world without an oracle
(`generator.enabled` on `world.name: dataset`) get their reference answers the way the LLM Teacher's
own drafts do, from the same labeller and the same vote (workflow.label: `teacher.labels.samples`
sampled solutions, kept with at least `min_agreement` agreeing).

    label (one branch per draft) | check (one branch per reference problem)

- label: drafts that are malformed or copies of known problems are rejected before any label is
  paid for (as the Teacher's write step does); the rest are voted on; a draft without a consensus is
  rejected `no_consensus`, one with a consensus gets `answer_source="model"` and its `vote_share`.
- check: problems that carry a dataset's reference answer (the drafts' parents) are voted on the same
  way and the vote compared with the reference: what a user reads to know how far to trust the
  labels where no oracle can check them (`labels/reference_agreement`).

Every call is audited under the drafts' source (the calls table links a label call to its draft).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from curriculum.config import EndpointConfig
from curriculum.curricula.admission import malformed
from curriculum.records import DraftSource, Problem, RejectedDraft
from curriculum.roles.teacher.base import ReferenceCheck, TeachingResult
from curriculum.roles.teacher.endpoint import EndpointError
from curriculum.roles.teacher.workflow import (
    HANDLED,
    CallLog,
    Label,
    Labelling,
    attempt_of,
    call_seed,
    describe,
    give_up_or_retry,
    label,
    no_consensus,
    reason_of,
    retry_policy,
)


class LabelState(TypedDict, total=False):
    drafts: list[Problem]
    references: list[Problem]
    draft: Problem  # the payload of one label branch (with its index)
    index: int
    reference: Problem  # the payload of one check branch
    labelled: Annotated[list[tuple[int, Problem]], operator.add]  # (index in `drafts`, labelled draft)
    rejected: Annotated[list[RejectedDraft], operator.add]
    checks: Annotated[list[ReferenceCheck], operator.add]


def label_drafts(
    labelling: Labelling,
    config: EndpointConfig,
    drafts: Sequence[Problem],
    known: frozenset[str],
    references: Sequence[Problem],
    source: DraftSource,
    round: int,
    seed: int,
) -> TeachingResult:
    """`drafts` (questions of `source`, answers not yet known) labelled by majority vote, in their
    order; the rest rejected with a reason; a `ReferenceCheck` per problem of `references`."""
    result = TeachingResult()
    to_label, seen = [], set(known)
    for draft in drafts:
        verdict = malformed(draft.model_copy(update={"answer": "?"}))
        if verdict is None and draft.id in seen:
            verdict = ("duplicate", "already known" if draft.id in known else "proposed twice this round")
        if verdict is not None:
            result.rejected.append(_reject(draft, draft.question, verdict[0], verdict[1], source))
            continue
        seen.add(draft.id)
        to_label.append(draft)
    if not to_label and not references:
        return result
    log = CallLog(round=round, source=source)
    graph = _graph(labelling, config, log, source, seed)
    state = graph.invoke(
        LabelState(drafts=to_label, references=list(references), labelled=[], rejected=[], checks=[]),
        config={"max_concurrency": config.max_concurrency},
    )
    if log.endpoint_down():
        raise EndpointError(
            f"the labeller's endpoint {labelling.endpoint.name} answered none of the {len(log.calls)} calls "
            f"labelling round {round}'s {source} drafts ({log.calls[-1].error}); `curriculum resume RUN_DIR` "
            "retries the stage"
        )
    result.problems = [problem for _, problem in sorted(state["labelled"], key=operator.itemgetter(0))]
    result.rejected.extend(state["rejected"])
    result.checks = sorted(state["checks"], key=lambda check: check.problem_id)
    result.calls = list(log.calls)
    return result


def _reject(draft: Problem, text: str, reason: str, detail: str, source: DraftSource) -> RejectedDraft:
    return RejectedDraft(
        source=source,
        parent_id=draft.parent_id,
        text=text,
        reason=reason,
        detail=detail,
        round=draft.round_created,
        created_by=draft.created_by,
    )


def _graph(labelling: Labelling, config: EndpointConfig, log: CallLog, source: DraftSource, seed: int) -> Any:
    policy, max_tries = retry_policy(config), config.max_attempts

    def fan_out(state: LabelState) -> list[Send] | str:
        sends = [Send("label", {"draft": d, "index": i}) for i, d in enumerate(state["drafts"])]
        sends += [Send("check", {"reference": r}) for r in state["references"]]
        return sends or END

    def vote(question: str, parent_id: str | None, draft_id: str, kind: str, attempt: int) -> Label:
        """One labelling (the labeller's sampled solutions and their majority vote), audited in `log`."""
        return label(
            labelling,
            question,
            log,
            parent_id=parent_id,
            draft_id=draft_id,
            attempt=attempt,
            seed=call_seed(seed, log.round, kind, attempt),
        )

    def label_draft(state: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
        draft, attempt = state["draft"], attempt_of(runtime)
        try:
            result = vote(draft.question, draft.parent_id, draft.id, "label", attempt)
        except HANDLED as exc:
            give_up_or_retry(exc, attempt, max_tries)
            detail = f"label gave up after {attempt} tries: {describe(exc)}"
            return {"rejected": [_reject(draft, draft.question, reason_of(exc), detail, source)]}
        why = no_consensus(result.vote, labelling.min_agreement)
        if why is not None:
            return {"rejected": [_reject(draft, draft.question, "no_consensus", why, source)]}
        labelled = draft.model_copy(
            update={
                "answer": result.vote.answer or "",
                "solution": result.solution,
                "answer_source": "model",
                "vote_share": result.vote.share,
            }
        )
        return {"labelled": [(state["index"], labelled)]}

    def check(state: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
        problem, attempt = state["reference"], attempt_of(runtime)
        try:
            result = vote(problem.question, problem.id, problem.id, "check", attempt)
        except HANDLED as exc:  # an unanswered check is no check: nothing is counted
            give_up_or_retry(exc, attempt, max_tries)
            return {}
        voted = None if no_consensus(result.vote, labelling.min_agreement) else result.vote.answer
        agreed = voted is not None and labelling.equivalent([(voted, problem.answer)])[0]
        return {"checks": [ReferenceCheck(problem.id, problem.answer, voted, agreed)]}

    builder = StateGraph(LabelState)
    builder.add_node("label", label_draft, retry_policy=policy)
    builder.add_node("check", check, retry_policy=policy)
    builder.add_conditional_edges(START, fan_out, ["label", "check", END])
    builder.add_edge("label", END)
    builder.add_edge("check", END)
    return builder.compile(name=f"{source}-labels")
