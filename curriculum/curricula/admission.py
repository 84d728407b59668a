"""The gate every model-written problem passes before it enters the store.

Teachers and Generators are models: their drafts may be empty, enormous, binary junk,
copies of stored or evaluation problems, or carry an answer the world's oracle does not
confirm. `screen` keeps the good ones and turns the rest into `RejectedDraft` records
with a reason, so every rejection is stored and counted (`rejection_metrics`). Model
text is only ever compared and parsed here, never executed.

Reasons: empty, too_long, unprintable, duplicate (of a stored problem or an earlier draft
of the batch), eval_duplicate (of a held-out evaluation problem), unconfirmed (the oracle
disagrees with the answer; only for answers that claim to come from the oracle: a
model-voted answer is audited by label_quality.py instead).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

from curriculum.records import DraftSource, Problem, RejectedDraft
from curriculum.worlds import Oracle

MAX_QUESTION_CHARS = 4000  # a benchmark question is rarely over 2,000 characters
MAX_ANSWER_CHARS = 1000  # the verifier refuses longer answers anyway (verify.MAX_ANSWER_CHARS)
STORED_TEXT_CHARS = 2000  # a rejected draft keeps this much of its text
REASONS = ("empty", "too_long", "unprintable", "duplicate", "eval_duplicate", "unconfirmed")


def _unprintable(text: str) -> str | None:
    """Why `text` is not printable text (lone surrogates, control characters), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8 (lone surrogate)"
    for ch in text:
        if ch not in "\n\t\r" and unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn"):
            return f"control or unassigned character U+{ord(ch):04X}"
    return None


def _safe_text(text: str) -> str:
    """What a rejected draft may store: valid UTF-8, at most STORED_TEXT_CHARS characters."""
    text = text.encode("utf-8", errors="replace").decode("utf-8")
    return text if len(text) <= STORED_TEXT_CHARS else text[:STORED_TEXT_CHARS] + "..."


def malformed(problem: Problem) -> tuple[str, str] | None:
    """(reason, detail) for a draft that is not even well-formed text, or None."""
    question, answer = problem.question, problem.answer
    if not question.strip() or not answer.strip():
        return "empty", "no question" if not question.strip() else "no answer"
    if len(question) > MAX_QUESTION_CHARS or len(answer) > MAX_ANSWER_CHARS:
        return "too_long", f"question {len(question)} / answer {len(answer)} characters"
    for part in (question, answer, problem.solution):
        bad = _unprintable(part)
        if bad:
            return "unprintable", bad
    return None


def why_rejected(
    problem: Problem, stored: set[str], heldout: set[str], oracle: Oracle | None
) -> tuple[str, str] | None:
    """(reason, detail) for a draft that must not enter the store, or None for a good one."""
    verdict = malformed(problem)
    if verdict is not None:
        return verdict
    question, answer = problem.question, problem.answer
    if problem.id in heldout:
        return "eval_duplicate", "the same question as a held-out evaluation problem"
    if problem.id in stored:
        return "duplicate", "already in the store"
    if problem.answer_source == "oracle" and oracle is not None:
        expected = oracle.solve(question)
        if expected is None:
            return "unconfirmed", "the oracle cannot solve the question"
        if expected.strip() != answer.strip():
            return "unconfirmed", f"the oracle's answer is {expected}, the draft says {_safe_text(answer)[:100]}"
    return None


def screen(
    problems: Sequence[Problem],
    stored: Iterable[str],
    heldout: Iterable[str],
    oracle: Oracle | None,
    source: DraftSource,
    round: int,
) -> tuple[list[Problem], list[RejectedDraft]]:
    """(accepted, rejected) drafts; an accepted draft's id joins `stored` for the rest of the batch."""
    known, held = set(stored), set(heldout)
    batch: set[str] = set()  # ids accepted from this batch
    accepted: list[Problem] = []
    rejected: list[RejectedDraft] = []
    for problem in problems:
        if problem.id in batch:  # ids derive from the normalised question
            verdict: tuple[str, str] | None = ("duplicate", "proposed earlier in this batch")
        else:
            verdict = why_rejected(problem, known, held, oracle)
        if verdict is None:
            batch.add(problem.id)
            accepted.append(problem)
            continue
        rejected.append(_rejected(problem, verdict, source, round))
    return accepted, rejected


def screen_form(
    problems: Sequence[Problem], source: DraftSource, round: int
) -> tuple[list[Problem], list[RejectedDraft]]:
    """Only the form checks (empty, too_long, unprintable): what must go before any other
    processing of model text, e.g. decontamination, which stores a matching draft's text."""
    accepted: list[Problem] = []
    rejected: list[RejectedDraft] = []
    for problem in problems:
        verdict = malformed(problem)
        if verdict is None:
            accepted.append(problem)
        else:
            rejected.append(_rejected(problem, verdict, source, round))
    return accepted, rejected


def _rejected(problem: Problem, verdict: tuple[str, str], source: DraftSource, round: int) -> RejectedDraft:
    reason, detail = verdict
    return RejectedDraft(
        source=source,
        parent_id=problem.parent_id,
        text=_safe_text(problem.question),
        reason=reason,
        detail=detail,
        round=round,
        created_by=_safe_text(problem.created_by),
    )


def sanitize(rejected: Sequence[RejectedDraft]) -> list[RejectedDraft]:
    """Rejected drafts whose texts the store can hold (valid UTF-8, bounded length), whoever made them."""
    return [
        d
        if d.text == _safe_text(d.text) and d.detail == _safe_text(d.detail)
        else d.model_copy(update={"text": _safe_text(d.text), "detail": _safe_text(d.detail)})
        for d in rejected
    ]


def rejection_metrics(rejected: Sequence[RejectedDraft], prefix: str) -> dict[str, float]:
    """`<prefix>/rejected/<reason>` counts, every known reason present (zero when none)."""
    counts = Counter(d.reason for d in rejected)
    return {
        f"{prefix}/rejected/{reason}": float(counts.get(reason, 0)) for reason in sorted(set(REASONS) | set(counts))
    }
