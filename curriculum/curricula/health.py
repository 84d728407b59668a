"""Health of a long run: how diverse the problems each round adds are, and when that collapses.

Self-play proposers are reported to lose diversity over long runs (R-Zero's proposer; majority-vote
labels narrowing what survives). Per round, over the problems the Teacher, synthesis and the
Generator added (`round_health`):

- distinct-n: distinct word n-grams / all word n-grams of the round's questions (n = 2, 3), with
  the decontamination's tokens (decontam.py), so formatting does not count as diversity;
- near-duplicate rate: the share of them that an LSH over MinHashes of word shingles (`datasketch`)
  finds as similar as `health.near_duplicate_similarity` to an earlier problem of the run (any
  round before, or earlier in this round's order); the index is updated with each round's problems,
  so a round's cost does not grow with the run, and rebuilt from the store when a run resumes;
- the concepts and levels covered, the mean question length in tokens, and the vote shares of
  model-labelled answers (mean, 10th percentile, share below `health.weak_vote_share`).

A round is low-diversity when its distinct-2 share is below `health.min_distinct_2` or its
near-duplicate rate above `health.max_near_duplicates`; `low_diversity_streak` counts such rounds
in a row, and the loop warns once the streak reaches `health.warn_after_rounds`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from datasketch import MinHash, MinHashLSH

from curriculum.curricula.decontam import ngrams, normalized_tokens
from curriculum.records import Problem
from curriculum.store.queries import StoreQueries, StoreReader

if TYPE_CHECKING:
    from curriculum.config.health import HealthConfig

PREFIX = "health/"


def distinct_n(questions: Iterable[str], n: int) -> float | None:
    """Distinct word n-grams / all word n-grams over the questions (a question shorter than n
    words is one n-gram); None without any."""
    if n < 1:
        raise ValueError(f"distinct_n: n must be >= 1, got {n}")
    seen: set[str] = set()
    total = 0
    for question in questions:
        tokens = normalized_tokens(question)
        if not tokens:
            continue
        grams = [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)] or [" ".join(tokens)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class NearDuplicates:
    """An LSH index of every problem of the run so far, by MinHash of its word shingles.

    Problems go in with `observe` in the run's order; a problem counts as a near-duplicate when the
    LSH finds a problem that went in before it. Observing a problem again (a round run a second
    time after a crash) neither adds it twice nor counts it against itself or later ones.
    """

    def __init__(self, similarity: float = 0.8, num_perm: int = 64, shingle: int = 3):
        self.num_perm = num_perm
        self.shingle = shingle
        # Bands weighted towards finding a near-copy (a miss hides a collapse) over a false alarm:
        # at similarity 0.8 and 64 permutations, a pair at 0.9 is found 97% of the time, one at 0.5 1%.
        self._lsh = MinHashLSH(threshold=similarity, num_perm=num_perm, weights=(0.3, 0.7))
        self._order: dict[str, int] = {}  # problem id -> when it went in (the LSH's key)
        self.through_round: int | None = None  # problems of every round up to this one are in

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, problem_id: object) -> bool:
        return problem_id in self._order

    def _minhashes(self, questions: Sequence[str]) -> list[MinHash]:
        shingles = [[gram.encode() for gram in sorted(ngrams(normalized_tokens(q), self.shingle))] for q in questions]
        return MinHash.bulk(shingles, num_perm=self.num_perm)

    def add(self, problems: Iterable[tuple[str, str]]) -> None:
        """Index (id, question) pairs without counting anything (rebuilding on resume)."""
        self.observe(list(problems), count=False)

    def observe(self, problems: Sequence[tuple[str, str]], count: bool = True) -> int:
        """Index the (id, question) pairs in order; how many near-duplicate a problem before them."""
        minhashes = self._minhashes([question for _, question in problems])
        with self._lsh.insertion_session() as session:
            for (problem_id, _), minhash in zip(problems, minhashes):
                if problem_id not in self._order:
                    self._order[problem_id] = len(self._order)
                    session.insert(self._order[problem_id], minhash)
        if not count:
            return 0
        return sum(
            any(key < self._order[problem_id] for key in self._lsh.query(minhash))
            for (problem_id, _), minhash in zip(problems, minhashes)
        )


def round_health(problems: Sequence[Problem], index: NearDuplicates, weak_vote_share: float) -> dict[str, float]:
    """`health/...` metrics of a round's new problems (in the store's order), which go into `index`."""
    duplicates = index.observe([(p.id, p.question) for p in problems])
    metrics: dict[str, float] = {"new_problems": len(problems)}
    if problems:
        questions = [p.question for p in problems]
        for n in (2, 3):
            value = distinct_n(questions, n)
            if value is not None:
                metrics[f"distinct_{n}"] = value
        metrics["near_duplicates"] = duplicates
        metrics["near_duplicate_rate"] = duplicates / len(problems)
        metrics["concepts"] = len({c for p in problems for c in p.concepts})
        metrics["levels"] = len({p.level for p in problems if p.level is not None})
        metrics["mean_tokens"] = sum(len(normalized_tokens(q)) for q in questions) / len(questions)
    shares = [p.vote_share for p in problems if p.vote_share is not None]
    if shares:
        metrics["vote_share_mean"] = sum(shares) / len(shares)
        metrics["vote_share_p10"] = percentile(shares, 10)
        metrics["vote_share_weak"] = sum(s < weak_vote_share - 1e-12 for s in shares) / len(shares)
    return {PREFIX + k: float(v) for k, v in metrics.items()}


def is_low_diversity(metrics: dict[str, float], cfg: HealthConfig) -> bool | None:
    """Whether a round's `round_health` metrics fall below the diversity floor; None for a round
    that added nothing (it neither extends nor breaks a streak)."""
    distinct = metrics.get(PREFIX + "distinct_2")
    if distinct is None:
        return None
    return distinct < cfg.min_distinct_2 or metrics[PREFIX + "near_duplicate_rate"] > cfg.max_near_duplicates


def low_diversity_streak(earlier: Sequence[float], now: bool) -> int:
    """Low-diversity rounds in a row ending now, from the earlier rounds' `health/low_diversity_round`
    flags (newest first; rounds without new problems left out)."""
    if not now:
        return 0
    streak = 1
    for flag in earlier:
        if not flag:
            break
        streak += 1
    return streak


def observe_round(
    reader: StoreReader, round: int, index: NearDuplicates, cfg: HealthConfig
) -> tuple[dict[str, float], str | None]:
    """(`health/...` metrics of the problems `round` added, a warning line or None): the warning when
    this round ends `cfg.warn_after_rounds` low-diversity rounds in a row (the earlier rounds' flags
    are read from the store's `rounds` table, so a resumed run keeps counting)."""
    start = 0 if index.through_round is None else index.through_round + 1
    if start < round:  # a new or resumed driver: the run's earlier problems go in first, once
        index.add(reader.read(StoreQueries.questions, start, round))
    new = [p for p in reader.read(StoreQueries.problems, round=round) if p.source != "seed"]
    metrics = round_health(new, index, cfg.weak_vote_share)
    index.through_round = max(round, index.through_round or 0)
    low = is_low_diversity(metrics, cfg)
    if low is None:  # nothing new: the streak neither grows nor breaks
        return metrics, None
    flag = PREFIX + "low_diversity_round"
    # The streak is counted up to the length that warns: only that many rounds are read back.
    earlier = reader.read(StoreQueries.round_metric, flag, round, cfg.warn_after_rounds - 1)
    streak = low_diversity_streak(earlier, low)
    metrics[flag] = float(low)
    metrics[PREFIX + "low_diversity_rounds"] = float(streak)
    metrics[PREFIX + "low_diversity"] = float(streak >= cfg.warn_after_rounds)
    if streak < cfg.warn_after_rounds:
        return metrics, None
    return metrics, (
        f"round {round}: the new problems' diversity has been low for {streak} rounds in a row: distinct word "
        f"bigrams {metrics[PREFIX + 'distinct_2']:.2f} (floor health.min_distinct_2={cfg.min_distinct_2:g}), "
        f"near-duplicates of earlier problems {100 * metrics[PREFIX + 'near_duplicate_rate']:.0f}% (ceiling "
        f"health.max_near_duplicates={cfg.max_near_duplicates:g}); the problem stream may be collapsing "
        "(curriculum inspect shows the health table)"
    )
