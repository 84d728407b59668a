"""Health of a long run: how diverse the problems each round adds are, and when that collapses.

Self-play proposers are reported to lose diversity over long runs (R-Zero's proposer; majority-vote
labels narrowing what survives). Per round, over the problems the Teacher, synthesis and the
Generator added (`round_health`):

- distinct-n: distinct word n-grams / all word n-grams of the round's questions (n = 2, 3), with
  the decontamination's tokens (decontam.py), so formatting does not count as diversity;
- near-duplicate rate: the share of them that an LSH over MinHashes of word shingles (`datasketch`)
  finds as similar as `health.near_duplicate_similarity` to an earlier problem of the run (any
  round before, or earlier in this round's order); the index is updated with each round's problems
  (a round costs the MinHashes of its own problems and one copy of the index, ~0.1 KB a stored
  problem), and rebuilt from the store in one pass when a driver starts (resume);
- the concepts and levels covered, the mean question length in tokens, and the vote shares of
  model-labelled answers (mean, 10th percentile, share below `health.weak_vote_share`).

A round is low-diversity when its distinct-2 share is below `health.min_distinct_2` or its
near-duplicate rate above `health.max_near_duplicates`; `low_diversity_streak` counts such rounds
in a row, and the loop warns once the streak reaches `health.warn_after_rounds`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
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


# A problem's place in the run: its round, then its position in the round's problems (by id).
_ROUND_SHIFT = 32
_CHUNK = 20_000  # problems hashed at a time when rebuilding: bounds the signatures held at once


class NearDuplicates:
    """Banded MinHash LSH over every problem of the run so far (their word shingles' MinHash, `datasketch`).

    Two problems are candidates when all rows of one of the `bands` bands of their signatures agree
    (`datasketch.MinHashLSH`'s bands and rows for `similarity`, weighted towards finding a near-copy:
    a miss hides a collapse; at 0.8 and 64 permutations a pair at 0.9 is found 97% of the time, one at
    0.5 1%). Only what the question needs is kept: per band, a sorted array of the band's hashes with
    the place of the first problem that had each (16 bytes a band a problem, ~0.1 KB a problem;
    `MinHashLSH` keeps a set per bucket and the keys, ~5 KB a problem). A problem counts as a
    near-duplicate when one of its bands was seen at an earlier place, so observing a round again
    (a stage run a second time after a crash) neither adds anything nor counts a problem against
    itself or later ones.
    """

    def __init__(self, similarity: float = 0.8, num_perm: int = 64, shingle: int = 3):
        self.num_perm = num_perm
        self.shingle = shingle
        lsh = MinHashLSH(threshold=similarity, num_perm=num_perm, weights=(0.3, 0.7))
        self.bands, self.rows = int(lsh.b), int(lsh.r)
        self._hashes: list[np.ndarray] = [np.empty(0, np.uint64) for _ in range(self.bands)]  # sorted
        self._first: list[np.ndarray] = [np.empty(0, np.int64) for _ in range(self.bands)]  # earliest place per hash
        self._sizes: dict[int, int] = {}  # problems indexed per round
        self.through_round: int | None = None  # the problems of every round up to this one are in

    def __len__(self) -> int:
        return sum(self._sizes.values())

    def _band_hashes(self, questions: Sequence[str]) -> np.ndarray:
        """(len(questions), bands) uint64: each band's rows folded into one 64-bit hash."""
        shingles = [[gram.encode() for gram in sorted(ngrams(normalized_tokens(q), self.shingle))] for q in questions]
        signatures = np.array([m.hashvalues for m in MinHash.generator(shingles, num_perm=self.num_perm)], np.uint64)
        rows = signatures.reshape(len(questions), self.num_perm)[:, : self.bands * self.rows]
        rows = rows.reshape(len(questions), self.bands, self.rows)
        folded: np.ndarray = np.zeros((len(questions), self.bands), np.uint64)
        for row in range(self.rows):  # FNV-style fold; uint64 arithmetic wraps
            folded = folded * np.uint64(1099511628211) + rows[:, :, row] + np.uint64(1)
        return folded

    def _index(self, hashes: np.ndarray, places: np.ndarray) -> None:
        for band in range(self.bands):
            order = np.lexsort((places, hashes[:, band]))
            new, first = hashes[order, band], places[order]
            keep: np.ndarray = np.ones(len(new), bool)
            keep[1:] = new[1:] != new[:-1]  # the earliest place per hash among the new ones
            new, first = new[keep], first[keep]
            known, earliest = self._hashes[band], self._first[band]
            at: np.ndarray = np.asarray(np.searchsorted(known, new))
            seen: np.ndarray = at < len(known)
            seen[seen] = known[at[seen]] == new[seen]
            earliest[at[seen]] = np.minimum(earliest[at[seen]], first[seen])
            self._hashes[band] = np.insert(known, at[~seen], new[~seen])
            self._first[band] = np.insert(earliest, at[~seen], first[~seen])

    def add(self, problems: Sequence[tuple[int, str]]) -> None:
        """Index (round, question) pairs, by round then id as the store orders them, without counting
        (rebuilding on resume)."""
        places: np.ndarray = np.empty(len(problems), np.int64)
        for i, (round, _) in enumerate(problems):
            position = self._sizes.get(round, 0)
            self._sizes[round] = position + 1
            places[i] = (round << _ROUND_SHIFT) + position
        for start in range(0, len(problems), _CHUNK):
            chunk = problems[start : start + _CHUNK]
            self._index(self._band_hashes([q for _, q in chunk]), places[start : start + _CHUNK])

    def observe(self, round: int, questions: Sequence[str]) -> int:
        """Index one round's questions (in the store's order); how many near-duplicate a problem of
        an earlier round or one before them in this round."""
        if not questions:
            return 0
        hashes = self._band_hashes(questions)
        places = (np.int64(round) << np.int64(_ROUND_SHIFT)) + np.arange(len(questions), dtype=np.int64)
        self._index(hashes, places)
        self._sizes[round] = len(questions)
        earlier: np.ndarray = np.zeros(len(questions), bool)
        for band in range(self.bands):
            at = np.searchsorted(self._hashes[band], hashes[:, band])  # every hash is in by now
            earlier |= self._first[band][at] < places
        return int(earlier.sum())


def round_health(
    round: int, problems: Sequence[Problem], index: NearDuplicates, weak_vote_share: float
) -> dict[str, float]:
    """`health/...` metrics of a round's new problems (in the store's order), which go into `index`."""
    duplicates = index.observe(round, [p.question for p in problems])
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
        metrics["vote_share_p10"] = float(np.percentile(shares, 10))
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
    metrics = round_health(round, new, index, cfg.weak_vote_share)
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
