"""DPO preference pairs from graded attempts, by the Socratic-Zero rule.

For one problem and its k graded attempts:
- rejected: a wrong attempt;
- chosen: a correct attempt, or the problem's reference solution when all k fail;
- a problem with no wrong attempt gives no pair (nothing to push away from).

Plain functions over records: no torch, no tokenizer (the caller passes the prompt).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from curriculum.records import Attempt, PreferencePair, Problem

Pairing = Literal["first", "all"]


def build_preference_pairs(
    problem: Problem,
    attempts: Sequence[Attempt],
    prompt: str,
    policy_version: int,
    round: int,
    pairing: Pairing,
    max_pairs: int,
) -> list[PreferencePair]:
    """The preference pairs of one problem, in a deterministic order.

    `pairing="first"` gives at most one pair (the first wrong attempt against the first
    correct one); `"all"` pairs each distinct wrong attempt, up to `max_pairs`, with the
    correct ones in turn (cycling when there are fewer correct than wrong). Attempts are
    taken in `sample_index` order and repeated completions count once, so k identical
    wrong answers give one pair, not k. When every attempt is wrong and the problem has
    no reference solution there is nothing to prefer and no pair.
    """
    if pairing not in ("first", "all"):
        raise ValueError(f"pairing must be 'first' or 'all', got {pairing!r}")
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be at least 1, got {max_pairs}")
    for attempt in attempts:
        if attempt.problem_id != problem.id:
            raise ValueError(f"attempt {attempt.id} belongs to problem {attempt.problem_id}, not {problem.id}")

    ordered = sorted(attempts, key=lambda a: a.sample_index)
    correct = _distinct_completions(a for a in ordered if a.correct)
    # A completion graded both right and wrong (a flaky grader) is no preference signal.
    wrong = [c for c in _distinct_completions(a for a in ordered if not a.correct) if c not in correct]
    if not wrong:
        return []

    if correct:
        winners, from_reference = correct, False
    elif problem.solution:
        winners, from_reference = [problem.solution], True
    else:
        return []

    count = 1 if pairing == "first" else min(len(wrong), max_pairs)
    return [
        PreferencePair(
            problem_id=problem.id,
            policy_version=policy_version,
            round=round,
            prompt=prompt,
            chosen=winners[index % len(winners)],
            rejected=wrong[index],
            chosen_is_reference=from_reference,
        )
        for index in range(count)
    ]


def _distinct_completions(attempts: Iterable[Attempt]) -> list[str]:
    """Completions in the given order, each text once."""
    return list(dict.fromkeys(attempt.completion for attempt in attempts))
