"""The store's selection query picks exactly what the Python reference (selection.py) picks, in the
same order, on a store written through `Store.append` over several rounds."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from curriculum.config.selection import SelectionConfig
from curriculum.curricula.selection import select_round_problems, trusted
from curriculum.curricula.selection_sql import select_configured, select_round_sql
from curriculum.records import Attempt, Problem, SolveRate
from curriculum.store import Store
from curriculum.store.queries import LocalReader

ROUNDS = 5


def recorded_run(path: Path) -> tuple[list[Problem], list[Attempt]]:
    """A store of ROUNDS rounds: problems created along the way, of levels 1-4 or none, some
    model-labelled with a vote share; each round attempts some of them 1-8 times with a per-problem
    skill that drifts, so all-time and recent rates differ; some never attempted (fresh)."""
    rng = random.Random(7)
    problems = []
    for i in range(120):
        share = rng.choice([None, None, 0.4, 0.6, 1.0])
        problems.append(
            Problem(
                question=f"{i} + {i % 7}",
                answer=str(i + i % 7),
                source="seed" if i < 40 else "teacher",
                level=rng.choice([1, 2, 3, 4, None]),
                round_created=0 if i < 40 else rng.randrange(1, ROUNDS + 1),
                answer_source="oracle" if share is None else "model",
                vote_share=share,
            )
        )
    skill = {p.id: rng.random() for p in problems}
    attempts: list[Attempt] = []
    with Store(path) as store:
        store.append(problems[:40])
        for round in range(1, ROUNDS + 1):
            store.append([p for p in problems if p.round_created == round])
            existing = [p for p in problems if p.round_created < round]
            batch = []
            for p in rng.sample(existing, k=len(existing) // 2):
                skill[p.id] = min(1.0, max(0.0, skill[p.id] + rng.uniform(-0.3, 0.3)))
                batch += [
                    Attempt(
                        problem_id=p.id,
                        policy_version=round - 1,
                        sample_index=i,
                        round=round,
                        completion=f"r{round} s{i}",
                        extracted_answer=None,
                        correct=rng.random() < skill[p.id],
                        reward=0.0,
                        num_tokens=3,
                    )
                    for i in range(rng.choice([1, 4, 4, 8]))
                ]
            store.append(batch[: len(batch) // 2])  # a round's attempts in two transactions
            store.append(batch[len(batch) // 2 :])
            attempts += batch
    return problems, attempts


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, list[Problem], list[Attempt]]:
    path = tmp_path_factory.mktemp("run") / "store.duckdb"
    problems, attempts = recorded_run(path)
    return path, problems, attempts


def reference_rates(attempts: list[Attempt], last_n_rounds: int | None) -> dict[str, SolveRate]:
    """All-time rates overlaid with those of the last n rounds, from the attempts themselves."""

    def rates(scope: list[Attempt]) -> dict[str, SolveRate]:
        by_problem: dict[str, list[Attempt]] = {}
        for a in scope:
            by_problem.setdefault(a.problem_id, []).append(a)
        return {pid: SolveRate.of(atts) for pid, atts in by_problem.items()}

    overlaid = rates(attempts)
    if last_n_rounds is not None:
        latest = max(a.round for a in attempts)
        overlaid.update(rates([a for a in attempts if a.round > latest - last_n_rounds]))
    return overlaid


CASES = {  # n, low, high, fresh, failed, solved, min_attempts, solved_by_level, last_n_rounds, min_vote_share
    "loop default": (48, 0.25, 0.75, 0.5, 0.25, 0.0, 1, False, 2, 0.0),
    "every pool, by level": (40, 0.25, 0.75, 0.25, 0.25, 0.25, 1, True, 2, 0.5),
    "solved at random": (40, 0.25, 0.75, 0.2, 0.2, 0.4, 1, False, 1, 0.0),
    "narrow band, min attempts": (30, 0.375, 0.625, 0.1, 0.3, 0.2, 4, True, 3, 0.6),
    "all-time rates only": (25, 0.25, 0.75, 0.3, 0.3, 0.3, 2, False, None, 0.0),
    "fewer candidates than slots": (500, 0.25, 0.75, 0.5, 0.25, 0.1, 1, True, 2, 0.0),
    "quotas overshoot n": (3, 0.25, 0.75, 0.5, 0.5, 0.0, 1, False, 2, 0.0),
    "no band, failed only": (20, 0.5, 0.5, 0.0, 1.0, 0.0, 1, False, 2, 1.0),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("salt", [0, 1, 123456789])
def test_sql_selection_picks_what_the_python_reference_picks(recorded, case, salt):
    path, problems, attempts = recorded
    n, low, high, fresh, failed, solved, min_attempts, by_level, last_n, min_share = CASES[case]
    shares = dict(fresh_fraction=fresh, failed_fraction=failed, solved_fraction=solved)
    expected = select_round_problems(
        trusted(problems, min_share),
        reference_rates(attempts, last_n),
        n,
        low,
        high,
        salt,
        **shares,
        min_attempts=min_attempts,
        solved_by_level=by_level,
    )
    with Store(path, read_only=True) as store:
        got = select_round_sql(
            LocalReader(store),
            n,
            low,
            high,
            salt,
            **shares,
            min_attempts=min_attempts,
            solved_by_level=by_level,
            last_n_rounds=last_n,
            min_vote_share=min_share,
        )
    assert [p.id for p in got] == [p.id for p in expected]
    assert got == expected  # the whole records, as the round needs them
    assert expected  # every case picks something


def test_the_recorded_store_covers_every_pool(recorded):
    """The cases above are only as good as the store: it must hold all four pools, levels and shares."""
    _, problems, attempts = recorded
    rates = reference_rates(attempts, 2)
    fresh = [p for p in problems if p.id not in rates]
    kinds = {"band" if 0.25 <= r.rate <= 0.75 else "failed" if r.rate < 0.25 else "solved" for r in rates.values()}
    assert len(fresh) >= 10 and kinds == {"band", "failed", "solved"}
    assert rates != reference_rates(attempts, None)  # the overlay changes some rates
    assert {p.level for p in problems} == {1, 2, 3, 4, None}
    assert {p.vote_share for p in problems} == {None, 0.4, 0.6, 1.0}


def test_the_loops_call_passes_every_selection_key(recorded):
    path, problems, attempts = recorded
    sel = SelectionConfig(
        band_low=0.375,
        band_high=0.75,
        fresh_fraction=0.3,
        failed_fraction=0.25,
        solved_fraction=0.3,
        solved_by_level=True,
        last_n_rounds=1,
        min_vote_share=0.5,
    )
    expected = select_round_problems(
        trusted(problems, 0.5), reference_rates(attempts, 1), 40, 0.375, 0.75, 99, 0.3, 0.25, 0.3, solved_by_level=True
    )
    with Store(path, read_only=True) as store:
        assert select_configured(LocalReader(store), sel, 40, 99) == expected
