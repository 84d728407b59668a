"""Reference answers by majority vote (SwS: at least 4 of 8 sampled solutions agree).

Answers are grouped by equivalence (the verifier decides: "0.5" and "\\frac{1}{2}" are one answer),
and the largest group is the label when it has at least `min_agreement` votes and no other group
has as many. Samples without an answer count against the vote share, never for an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

# (predicted, reference) pairs -> whether each pair is the same answer (Verifier.grade_many with rule "none")
Equivalence = Callable[[list[tuple[str, str]]], list[bool]]


@dataclass(frozen=True)
class Vote:
    samples: int  # solutions asked for
    groups: tuple[tuple[str, int], ...]  # (an answer as first written, votes) per distinct answer, most votes first
    abstained: int  # solutions in which no answer was found

    @property
    def answer(self) -> str | None:
        return self.groups[0][0] if self.groups else None

    @property
    def votes(self) -> int:
        return self.groups[0][1] if self.groups else 0

    @property
    def share(self) -> float:
        return self.votes / self.samples if self.samples else 0.0

    @property
    def tied(self) -> bool:
        return len(self.groups) > 1 and self.groups[1][1] == self.votes

    def agrees(self, min_agreement: int) -> bool:
        return self.votes >= min_agreement and not self.tied

    def describe(self, limit: int = 5) -> str:
        """E.g. "5 x3, 7 x2, no answer x3 of 8"."""
        parts = [f"{_short(answer)} x{n}" for answer, n in self.groups[:limit]]
        if len(self.groups) > limit:
            parts.append(f"{len(self.groups) - limit} more")
        if self.abstained:
            parts.append(f"no answer x{self.abstained}")
        return ", ".join(parts) + f" of {self.samples}"


def majority_vote(answers: Sequence[str | None], equivalent: Equivalence) -> Vote:
    """Group `answers` (None: no answer) by equivalence and count the votes of each group."""
    given = [a.strip() for a in answers if a is not None and a.strip()]
    distinct = list(dict.fromkeys(given))
    pairs = [(b, a) for i, a in enumerate(distinct) for b in distinct[i + 1 :]]
    same = dict(zip(pairs, equivalent(pairs))) if pairs else {}
    representatives: list[str] = []  # the first spelling of each group
    group_of: dict[str, int] = {}
    for answer in distinct:
        for index, rep in enumerate(representatives):
            if same.get((answer, rep)):
                group_of[answer] = index
                break
        else:
            group_of[answer] = len(representatives)
            representatives.append(answer)
    counts = [0] * len(representatives)
    for answer in given:
        counts[group_of[answer]] += 1
    order = sorted(range(len(representatives)), key=lambda i: (-counts[i], i))
    return Vote(
        samples=len(answers),
        groups=tuple((representatives[i], counts[i]) for i in order),
        abstained=len(answers) - len(given),
    )


def _short(text: str, width: int = 24) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
