"""Decontamination: keep Teacher and Generator problems away from the evaluation sets.

A draft is contaminated when at least `threshold` of its word n-grams occur in the
questions of a configured evaluation set (normalised text: lower case, words, numbers
and math symbols as tokens, everything else dropped). Reported scores would otherwise
measure recall of a benchmark question rather than skill.

A draft with fewer than n tokens has one "n-gram": its whole token sequence. It matches
only an evaluation question that is the same sequence (a short question inside a long
one, such as "3+4=?" in a word problem, is not taken for a copy of it).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from curriculum.records import Problem, RejectedDraft
from curriculum.worlds.loading import load_named

# Words, numbers, and the symbols that change a math problem's meaning; punctuation,
# LaTeX braces and dollar signs are dropped, so formatting does not hide a copy.
_TOKEN = re.compile(r"[^\W\d_]+|\d+|[+\-*/=<>^%()\[\]|!]")
REASON = "contaminated"


def normalized_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> set[str]:
    """The distinct n-grams of `tokens` as space-joined strings; one gram for a shorter text."""
    if not tokens:
        return set()
    if len(tokens) < n:
        return {" ".join(tokens)}
    return {" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


@dataclass(frozen=True)
class Match:
    """The evaluation question a draft overlaps most, and the share of the draft's n-grams found."""

    score: float  # matched n-grams / the draft's n-grams, over every indexed set
    eval_set: str
    item: str  # the evaluation problem's id
    matched: int
    total: int


class ContaminationIndex:
    """The n-grams of every question of the evaluation sets, each pointing at its first source."""

    def __init__(self, n: int = 8, threshold: float = 0.5):
        if n < 1:
            raise ValueError(f"n-gram size must be >= 1, got {n}")
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.n = n
        self.threshold = threshold
        self._grams: dict[str, int] = {}  # gram -> index into _items
        self._items: list[tuple[str, str]] = []  # (eval set, problem id)
        self.sets: Counter[str] = Counter()  # questions indexed per set

    def __len__(self) -> int:
        return len(self._grams)

    def add(self, eval_set: str, problems: Iterable[Problem]) -> None:
        for problem in problems:
            index = len(self._items)
            self._items.append((eval_set, problem.id))
            for gram in ngrams(normalized_tokens(problem.question), self.n):
                self._grams.setdefault(gram, index)
            self.sets[eval_set] += 1

    def match(self, text: str) -> Match | None:
        """How much of `text` occurs in the indexed questions; None when nothing does."""
        grams = ngrams(normalized_tokens(text), self.n)
        hits = Counter(self._grams[g] for g in grams if g in self._grams)
        if not hits:
            return None
        item, _ = hits.most_common(1)[0]
        eval_set, problem_id = self._items[item]
        matched = sum(hits.values())
        return Match(matched / len(grams), eval_set, problem_id, matched, len(grams))

    def is_contaminated(self, text: str) -> Match | None:
        """The match when it reaches the threshold, else None."""
        found = self.match(text)
        return found if found is not None and found.score >= self.threshold - 1e-12 else None

    def split(self, problems: Sequence[Problem], source: str, round: int) -> tuple[list[Problem], list[RejectedDraft]]:
        """(clean problems, a "contaminated" rejected draft for each of the others), order kept."""
        clean: list[Problem] = []
        rejected: list[RejectedDraft] = []
        for problem in problems:
            found = self.is_contaminated(problem.question)
            if found is None:
                clean.append(problem)
                continue
            rejected.append(
                RejectedDraft(
                    source=source,
                    parent_id=problem.parent_id,
                    text=problem.question,
                    reason=REASON,
                    detail=(
                        f"{found.matched}/{found.total} {self.n}-grams ({found.score:.0%}) occur in "
                        f"{found.eval_set}, closest {found.item}"
                    ),
                    round=round,
                    created_by=problem.created_by,
                )
            )
        return clean, rejected


def build_index(config: Any, heldout: Sequence[Problem] = ()) -> ContaminationIndex | None:
    """The index of `config.decontamination` (its datasets, plus `heldout` when asked), or None when off."""

    cfg = config.decontamination
    if not cfg.enabled:
        return None
    index = ContaminationIndex(cfg.ngram, cfg.threshold)
    for name in cfg.eval_sets:  # with world.skip_invalid, records without an answer are left out here too
        index.add(name, load_named(config, name, invalid=[] if config.world.skip_invalid else None))
    if cfg.heldout and heldout:
        index.add("heldout", heldout)
    return index if index.sets else None
