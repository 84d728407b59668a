"""What the LLM workflows (the LLM Teacher, LLM synthesis) share: audited calls, tolerant parsing,
bounded retries, and reference answers by majority vote.

Each workflow is a LangGraph `StateGraph` whose steps call a chat endpoint. A step that fails on a
transport error (connection, timeout, 5xx, rate limit) or a parse error (the reply is not the JSON
asked for, or was cut at max_tokens) raises, and LangGraph's `RetryPolicy` runs it again, up to
`max_attempts` tries in all (its default `retry_on` does not cover parse errors, which are
ValueErrors: they are named here). The last try does not raise: the step gives up with a
rejection reason, so one bad reply costs its drafts, never the round. Anything else (a bug) fails
loudly. Every call, good or bad, becomes a `ModelCall` record (prompt, raw reply, parsed result,
latency, tokens, error) in the `CallLog`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import openai
from langchain_core.exceptions import OutputParserException
from langchain_core.output_parsers import PydanticOutputParser
from langgraph.types import RetryPolicy
from pydantic import BaseModel, ValidationError

from curriculum.config import EndpointConfig, Extraction
from curriculum.curricula.admission import MAX_ANSWER_CHARS
from curriculum.curricula.votes import Vote, majority_vote
from curriculum.records import DraftSource, ModelCall, content_id
from curriculum.roles.teacher.endpoint import Endpoint, Reply, TruncatedOutput
from curriculum.roles.teacher.prompts import Prompt, as_text, prompt_hash
from curriculum.verify import extract_answer

MAX_REPLY_CHARS = 200_000  # a reply this long is not what was asked for; it is not parsed
STORED_CHARS = 20_000  # prompts and replies are stored up to this length (the hash covers the whole prompt)

TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.InternalServerError,  # 5xx
    openai.RateLimitError,
    httpx.TransportError,
    ConnectionError,
)
PARSE_ERRORS: tuple[type[Exception], ...] = (OutputParserException, ValidationError, TruncatedOutput)
RETRY_ON: tuple[type[Exception], ...] = (*TRANSPORT_ERRORS, *PARSE_ERRORS)
# Errors a step turns into a rejection on its last try (or at once, when retrying cannot help:
# a 400 such as a prompt over the context length).
HANDLED: tuple[type[BaseException], ...] = (*RETRY_ON, openai.APIError)
TRANSPORT_REASONS = ("endpoint_error", "timeout")

Parsed = TypeVar("Parsed", bound=BaseModel)


def retry_policy(config: EndpointConfig) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=config.max_attempts,
        initial_interval=config.retry_backoff_s,
        backoff_factor=2.0,
        max_interval=max(config.retry_backoff_s, 30.0),
        jitter=config.retry_backoff_s > 0,
        retry_on=RETRY_ON,
    )


def reason_of(exc: BaseException) -> str:
    """The rejection reason of a step that gave up with `exc`."""
    if isinstance(exc, TruncatedOutput):
        return "truncated"
    if isinstance(exc, (OutputParserException, ValidationError)):
        return "unparseable"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, TRANSPORT_ERRORS):
        return "endpoint_error"
    if isinstance(exc, openai.APIStatusError):
        return "refused" if exc.status_code < 500 else "endpoint_error"
    return "endpoint_error"


def describe(exc: BaseException, width: int = 300) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        where = ".".join(str(part) for part in errors[0]["loc"]) if errors else ""
        text = f"{where or 'reply'}: {errors[0]['msg'] if errors else str(exc)}"
    else:
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= width else text[: width - 3] + "..."


def parse_reply(text: str, schema: type[Parsed]) -> Parsed:
    """The reply as `schema`: strict JSON first (what structured output gives), then tolerantly (prose
    or a fence around the object, junk after it, a cut-off tail). Raises OutputParserException or
    ValidationError; model text is only ever parsed as JSON, never run."""
    if not text.strip():
        raise OutputParserException("empty reply")
    if len(text) > MAX_REPLY_CHARS:
        raise OutputParserException(f"reply of {len(text)} characters is over {MAX_REPLY_CHARS}")
    try:
        return schema.model_validate_json(text)
    except ValidationError:
        pass
    try:
        data = json.loads(text)
    except ValueError:
        data = _first_object(text)
    if data is None:  # a fenced block, or JSON cut short: langchain's tolerant reader
        return PydanticOutputParser(pydantic_object=schema).parse(text)
    return schema.model_validate(data)  # JSON was found: its shape decides


def _first_object(text: str) -> Any:
    """The first complete JSON object in `text` (prose before it and junk after it ignored), or None."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            return decoder.raw_decode(text, start)[0]
        except ValueError:
            start = text.find("{", start + 1)
    return None


def storable(text: str, limit: int = STORED_CHARS) -> str:
    """Text the store can hold: valid UTF-8 without NUL, at most `limit` characters (then marked)."""
    text = text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "\\x00")
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


@dataclass
class CallLog:
    """Every call of one `teach`/`synthesize` run, in the order they ended (thread-safe)."""

    round: int
    source: DraftSource
    calls: list[ModelCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, call: ModelCall) -> None:
        with self._lock:
            self.calls.append(call)

    def endpoint_down(self) -> bool:
        """Whether calls were made and none got a reply (every one a transport error)."""
        with self._lock:
            return bool(self.calls) and all(c.error.split(":")[0] in TRANSPORT_REASONS for c in self.calls)


def call_seed(seed: int, *parts: Any) -> int:
    """A per-call sampling seed: a repeated step (a resumed stage) asks for the same samples."""
    return int(content_id(seed, *parts), 16) % (2**31)


def ask(
    endpoint: Endpoint,
    prompt: Prompt,
    values: dict[str, Any],
    log: CallLog,
    *,
    node: str,
    parent_id: str | None,
    attempt: int,
    seed: int,
    schema: type[Parsed] | None = None,
    drafts: Callable[[Any], list[str]] = lambda parsed: [],
    sample_index: int = 0,
) -> tuple[Reply, Any]:
    """One audited call: render `prompt`, ask the endpoint, parse the reply as `schema` (None: keep the
    text). Returns (reply, parsed); raises what `complete` or `parse_reply` raise, after logging it."""
    messages = prompt.render(**values)
    record = dict(
        round=log.round,
        source=log.source,
        node=node,
        parent_id=parent_id,
        template=prompt.template,
        prompt_hash=prompt_hash(messages),
        prompt=storable(as_text(messages)),
        endpoint=endpoint.name,
        attempt=attempt,
        sample_index=sample_index,
    )
    start = time.perf_counter()
    try:
        reply = endpoint.complete(
            messages, seed=seed, schema_name=node, schema=None if schema is None else schema.model_json_schema()
        )
    except HANDLED as exc:  # latency: until it failed, including the wait for a slot
        output = exc.text if isinstance(exc, TruncatedOutput) else ""
        log.add(
            ModelCall(
                **record,
                output=storable(output),
                latency_s=time.perf_counter() - start,
                error=f"{reason_of(exc)}: {describe(exc)}",
            )
        )
        raise
    usage = dict(
        output=storable(reply.text),
        latency_s=reply.latency_s,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
    )
    if schema is None:
        log.add(ModelCall(**record, **usage, drafts=drafts(reply.text)))
        return reply, reply.text
    try:
        parsed = parse_reply(reply.text, schema)
    except (OutputParserException, ValidationError) as exc:
        log.add(ModelCall(**record, **usage, error=f"unparseable: {describe(exc)}"))
        raise
    log.add(ModelCall(**record, **usage, parsed=storable(parsed.model_dump_json()), drafts=drafts(parsed)))
    return reply, parsed


def attempt_of(runtime: Any) -> int:
    """The try of the running step (1-based), from LangGraph's runtime."""
    info = getattr(runtime, "execution_info", None)
    return info.node_attempt if info is not None else 1


def give_up_or_retry(exc: BaseException, attempt: int, max_attempts: int) -> None:
    """Re-raise `exc` when LangGraph should retry it (a retryable error before the last try)."""
    if isinstance(exc, RETRY_ON) and attempt < max_attempts:
        raise exc


# ----------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class Labelling:
    """How drafts are labelled: `samples` solutions from `endpoint`, read with `extraction`."""

    endpoint: Endpoint
    prompt: Prompt
    samples: int
    min_agreement: int
    extraction: Extraction
    equivalent: Callable[[list[tuple[str, str]]], list[bool]]


@dataclass(frozen=True)
class Label:
    vote: Vote
    solution: str  # a sampled solution that voted with the majority ("" without one)


def label(
    labelling: Labelling, question: str, log: CallLog, *, parent_id: str | None, draft_id: str, attempt: int, seed: int
) -> Label:
    """Sample `samples` solutions to `question` (concurrently, within the endpoint's bound) and vote.
    A transport error of any sample raises (the step is retried as a whole: the samples are seeded);
    a solution cut at max_tokens is kept as it is (audited as truncated): no answer in it, no vote."""
    from langchain_core.runnables.config import ContextThreadPoolExecutor

    def one(index: int) -> str:
        try:
            _, text = ask(
                labelling.endpoint,
                labelling.prompt,
                {"question": question},
                log,
                node="label",
                parent_id=parent_id,
                attempt=attempt,
                sample_index=index,
                seed=call_seed(seed, draft_id, index),
                drafts=lambda _: [draft_id],
            )
        except TruncatedOutput as cut:  # a solution that ran out of tokens votes only if it got to an answer
            return cut.text
        return text

    workers = max(1, min(labelling.samples, labelling.endpoint.config.max_concurrency))
    with ContextThreadPoolExecutor(max_workers=workers) as pool:
        texts = list(pool.map(one, range(labelling.samples)))
    answers = [extract_answer(text, labelling.extraction) for text in texts]
    vote = majority_vote(answers, labelling.equivalent)
    solution = ""
    if vote.answer is not None:
        winners = labelling.equivalent([(a, vote.answer) if a is not None else ("", vote.answer) for a in answers])
        solution = next((text for text, ok in zip(texts, winners) if ok), "")
    return Label(vote, solution)


def no_consensus(vote: Vote, min_agreement: int) -> str | None:
    """Why a draft's vote does not give it a label (the `no_consensus` detail), or None when it does:
    at least `min_agreement` votes, no tie, and an answer the verifier can take."""
    if vote.agrees(min_agreement) and len(vote.answer or "") <= MAX_ANSWER_CHARS:
        return None
    return f"votes {vote.describe()} ({'tied' if vote.tied else f'needs {min_agreement}'})"


def verifier_equivalence(verifier: Any) -> Callable[[list[tuple[str, str]]], list[bool]]:
    """(answer, answer) pairs -> same answer, by the run's verifier."""

    def equivalent(pairs: list[tuple[str, str]]) -> list[bool]:
        if not pairs:
            return []
        grades = verifier.grade_many([a for a, _ in pairs], [b for _, b in pairs], "none")
        return [grade.correct for grade in grades]

    return equivalent
