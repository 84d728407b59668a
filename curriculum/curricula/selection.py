"""Which problems a round trains on: solve-rate bands, fresh problems, usefulness weights.

Plain functions over solve-rate estimates (from `Store.solve_rates`), so every rule is
testable without a store, a model or Ray.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from curriculum.records import Problem, SolveRate, rate_within


def trusted(problems: Sequence[Problem], min_vote_share: float) -> list[Problem]:
    """The problems a round may train on: a model-voted reference answer needs a vote share of at
    least `min_vote_share` (`selection.min_vote_share`); other answers are always trusted."""
    return [p for p in problems if p.vote_share is None or p.vote_share >= min_vote_share - 1e-9]


def tie_key(salt: int, problem_id: str) -> str:
    """Where a problem falls among equals: a hash of (salt, id), so a round's pick does not depend on
    the order candidates arrive in (a store query returns them in any order). The same text is
    `sha256(salt || ':' || id)` in SQL."""
    return hashlib.sha256(f"{salt}:{problem_id}".encode()).hexdigest()


def in_band(rate: SolveRate, low: float, high: float, min_attempts: int = 1) -> bool:
    return rate.attempts >= min_attempts and rate_within(rate.rate, low, high)


def select_round_problems(
    candidates: Sequence[Problem],
    rates: Mapping[str, SolveRate],
    n: int,
    low: float,
    high: float,
    salt: int,
    fresh_fraction: float = 0.5,
    failed_fraction: float = 0.0,
    solved_fraction: float = 0.0,
    min_attempts: int = 1,
    solved_by_level: bool = False,
) -> list[Problem]:
    """Pick up to ``n`` problems for a round from four pools:

    - fresh: never attempted (attempting them is how they get estimated), newest first;
    - failed: solve rate below the band, nearest to it first, then the lowest level (every
      all-wrong problem is as far from the band as every other: the frontier goes first, not the
      far end); a failure still teaches, through its reference solution;
    - solved: above the band, at random (or, with ``solved_by_level``, the same number from each
      level in turn): the occasional wrong sample of a mastered problem is a preference pair, and its
      correct attempts anchor the skill (learner.retention), where a small student would forget it;
    - band: inside [low, high], closest to 1/2 first (the most informative).

    Fresh, failed and solved get up to their fraction of the slots, the band the rest. Slots a
    pool cannot fill go to the band, then to fresh problems, then to solved ones; never to more
    failed ones: training on failures far beyond the frontier (reference solutions of problems two
    levels up) costs a small student what it knows. So a round can come out smaller than ``n``.
    Ties are broken by `tie_key` (``salt``: one per run, round and purpose).
    """
    pools: dict[str, list[Problem]] = {"fresh": [], "failed": [], "solved": [], "band": []}
    for problem in candidates:
        rate = rates.get(problem.id)
        if rate is None:
            pools["fresh"].append(problem)
        elif in_band(rate, low, high, min_attempts):
            pools["band"].append(problem)
        else:
            pools["failed" if rate.rate < low else "solved"].append(problem)
    level = lambda p: p.level if p.level is not None else math.inf  # noqa: E731
    keys: dict[str, Callable[[Problem], Any]] = {
        "fresh": lambda p: (-p.round_created, tie_key(salt, p.id)),
        "failed": lambda p: (low - rates[p.id].rate, level(p), tie_key(salt, p.id)),
        "solved": lambda p: tie_key(salt, p.id),  # a random sample of everything mastered, every level
        "band": lambda p: (abs(rates[p.id].rate - 0.5), tie_key(salt, p.id)),
    }
    for name, pool in pools.items():
        pool.sort(key=keys[name])
    if solved_by_level:
        pools["solved"] = interleave_levels(pools["solved"])
    quota = quotas(n, fresh_fraction, failed_fraction, solved_fraction)
    taken = {name: min(quota[name], len(pool)) for name, pool in pools.items()}
    for name in ("band", "fresh", "solved"):  # leftover slots (none where rounded quotas overshoot n)
        taken[name] += min(max(0, n - sum(taken.values())), len(pools[name]) - taken[name])
    return [p for name in ("fresh", "band", "failed", "solved") for p in pools[name][: taken[name]]]


def quotas(n: int, fresh_fraction: float, failed_fraction: float, solved_fraction: float) -> dict[str, int]:
    """Each pool's share of ``n`` slots (`select_round_problems`): the band gets what the others leave."""
    quota = {
        "fresh": round(n * fresh_fraction),
        "failed": round(n * failed_fraction),
        "solved": round(n * solved_fraction),
    }
    quota["band"] = max(0, n - sum(quota.values()))
    return quota


def interleave_levels(problems: Sequence[Problem]) -> list[Problem]:
    """`problems` reordered one level at a time in turn (lowest level first, each level in its given
    order), so any prefix holds the levels as evenly as their sizes allow."""
    by_level: dict[float, list[Problem]] = {}
    for problem in problems:
        by_level.setdefault(problem.level if problem.level is not None else math.inf, []).append(problem)
    queues = [by_level[level] for level in sorted(by_level)]
    return [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]


def gaussian_usefulness(rate: float, center: float, width: float) -> float:
    """Weight of a generated problem by the Solver's solve rate on it (Socratic-Zero).

    Highest at ``center``; the paper leaves centre and width unpublished, so both are config.
    """
    return math.exp(-((rate - center) ** 2) / (2 * width**2))
