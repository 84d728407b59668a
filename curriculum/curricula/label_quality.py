"""Label quality: how often a model-voted reference answer agrees with an independent check.

An LLM Teacher labels its problems by majority vote (SwS: at least 4 of 8 samples agree);
such problems carry `answer_source="model"`. Where the world has an oracle (the
arithmetic world solves its own templates exactly), comparing the two measures how many
wrong labels the curriculum trains on. Problems the oracle cannot solve are counted as
unchecked, never as agreeing. A world without an oracle (a dataset) has reference answers for
its own problems only: the labeller votes on some of those too, and its agreement with the
reference (`reference_agreement`) estimates how often its labels of new problems are right.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from curriculum.records import Problem
from curriculum.verify import clean_answer


@dataclass
class LabelQuality:
    """Counts over the model-labelled problems of one batch (e.g. one round)."""

    model_labelled: int = 0
    checked: int = 0  # those the independent check could answer
    agreed: int = 0
    disagreements: list[str] = field(default_factory=list)  # problem ids
    vote_shares: list[float] = field(default_factory=list)  # of the model-labelled problems that record one

    @property
    def agreement(self) -> float | None:
        """agreed / checked, or None when nothing could be checked (not a perfect score)."""
        return self.agreed / self.checked if self.checked else None

    def metrics(self, prefix: str = "labels") -> dict[str, float]:
        out = {f"{prefix}/model_labelled": float(self.model_labelled), f"{prefix}/checked": float(self.checked)}
        if self.agreement is not None:
            out[f"{prefix}/agreement"] = self.agreement
        if self.vote_shares:
            out[f"{prefix}/vote_share_mean"] = sum(self.vote_shares) / len(self.vote_shares)
        return out


def same_answer(a: str, b: str) -> bool:
    """Equal after the usual cleaning, or equal as numbers ("12.0" and "12")."""
    a, b = clean_answer(a), clean_answer(b)
    if a == b:
        return True
    try:
        return Decimal(a) == Decimal(b)
    except InvalidOperation:
        return False


def label_agreement(
    problems: Iterable[Problem],
    check: Callable[[str], str | None],
    equivalent: Callable[[str, str], bool] = same_answer,
) -> LabelQuality:
    """Compare each model-labelled problem's answer with `check(question)` (None: cannot tell)."""
    quality = LabelQuality()
    for problem in problems:
        if problem.answer_source != "model":
            continue
        quality.model_labelled += 1
        if problem.vote_share is not None:
            quality.vote_shares.append(problem.vote_share)
        expected = check(problem.question)
        if expected is None:
            continue
        quality.checked += 1
        if equivalent(problem.answer, expected):
            quality.agreed += 1
        else:
            quality.disagreements.append(problem.id)
    return quality


@dataclass
class ReferenceAgreement:
    """The labeller's votes on problems with a reference answer, against that answer."""

    checked: int = 0
    agreed: int = 0  # a vote without a consensus counts as checked and not agreeing

    def metrics(self, prefix: str = "labels") -> dict[str, float]:
        out = {f"{prefix}/reference_checked": float(self.checked)}
        if self.checked:
            out[f"{prefix}/reference_agreement"] = self.agreed / self.checked
        return out


def reference_agreement(agreed: Iterable[bool]) -> ReferenceAgreement:
    """Count the checks (one bool per voted reference problem: did the vote give its answer)."""
    flags = list(agreed)
    return ReferenceAgreement(checked=len(flags), agreed=sum(flags))
