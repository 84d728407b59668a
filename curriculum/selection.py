"""Which problems a round trains on: solve-rate bands, fresh problems, usefulness weights.

Plain functions over solve-rate estimates (from `Store.solve_rates`), so every rule is
testable without a store, a model or Ray.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

from curriculum.records import Problem
from curriculum.store import SolveRate


def in_band(rate: SolveRate, low: float, high: float, min_attempts: int = 1) -> bool:
    return rate.attempts >= min_attempts and low - 1e-9 <= rate.rate <= high + 1e-9


def select_round_problems(
    candidates: Sequence[Problem],
    rates: Mapping[str, SolveRate],
    n: int,
    low: float,
    high: float,
    fresh_fraction: float,
    rng: random.Random,
    min_attempts: int = 1,
) -> list[Problem]:
    """Pick up to ``n`` problems for a round.

    Fresh problems (never attempted) are estimated by attempting them, so they get up to
    ``fresh_fraction`` of the slots, newest first; the rest go to problems whose solve rate
    lies in [low, high], closest to 1/2 first (the most informative), ties broken at random.
    Slots one kind leaves empty go to the other. Only when both run out do problems outside
    the band fill the round, nearest to the band first: early on, a weak policy may have no
    problem in band at all, and a failed problem still teaches through its reference solution.
    """
    fresh = [p for p in candidates if p.id not in rates]
    banded = [p for p in candidates if p.id in rates and in_band(rates[p.id], low, high, min_attempts)]
    chosen_ids = {p.id for p in fresh} | {p.id for p in banded}
    outside = [p for p in candidates if p.id not in chosen_ids]
    fresh.sort(key=lambda p: (-p.round_created, rng.random()))
    banded.sort(key=lambda p: (abs(rates[p.id].rate - 0.5), rng.random()))
    outside.sort(key=lambda p: (max(low - rates[p.id].rate, rates[p.id].rate - high), rng.random()))
    fresh_slots = min(len(fresh), round(n * fresh_fraction))
    band_slots = min(len(banded), n - fresh_slots)
    fresh_slots = min(len(fresh), n - band_slots)
    fill = n - fresh_slots - band_slots
    return fresh[:fresh_slots] + banded[:band_slots] + outside[:fill]


def gaussian_usefulness(rate: float, center: float, width: float) -> float:
    """Weight of a generated problem by the Solver's solve rate on it (Socratic-Zero).

    Highest at ``center``; the paper leaves centre and width unpublished, so both are config.
    """
    return math.exp(-((rate - center) ** 2) / (2 * width**2))
