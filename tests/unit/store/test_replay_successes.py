"""`StoreQueries.replay_successes`: earlier rounds' verified successes for the retention anchor
(`learner.retention.replay_per_level`), judged by the last round that attempted each problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_problem_counts import tries  # this folder is on sys.path (pytest prepend import mode)

from curriculum.records import Problem
from curriculum.store import Store


def _problem(name: str, level: int) -> Problem:
    return Problem(question=f"{name}=?", answer="1", source="seed", level=level)


@pytest.fixture
def store(tmp_path: Path):
    a, b, e = (_problem(n, 1) for n in "abe")
    c, d = (_problem(n, 2) for n in "cd")
    with Store(tmp_path / "store.duckdb") as store:
        store.append([a, b, c, d, e])
        # Round 1: a and c 4 of 4, d 3 of 4, b 1 of 4. Round 2: a 0 of 4 (forgotten), e 4 of 4.
        store.append([*tries(a, 1, 4, 4), *tries(b, 1, 1, 4), *tries(c, 1, 4, 4), *tries(d, 1, 3, 4)])
        store.append([*tries(a, 2, 0, 4), *tries(e, 2, 4, 4)])
        yield store, {p.question[0]: p.id for p in (a, b, c, d, e)}


def _picked(store: Store, ids: dict[str, str], **kwargs) -> list[tuple[str, int]]:
    args = {"before_round": 3, "per_level": 5, "min_solve_rate": 0.5, "exclude": [], "salt": 7} | kwargs
    name = {pid: n for n, pid in ids.items()}
    picked = store.replay_successes(**args)
    for problem, attempt in picked:
        assert attempt.problem_id == problem.id and attempt.correct and attempt.sample_index == 0
    return [(name[p.id], a.round) for p, a in picked]


def test_each_problem_is_judged_by_the_last_round_that_attempted_it(store):
    store, ids = store
    # a was solved in round 1 but failed in round 2; b never reached half.
    assert sorted(_picked(store, ids)) == [("c", 1), ("d", 1), ("e", 2)]
    assert sorted(_picked(store, ids, before_round=2)) == [("a", 1), ("c", 1), ("d", 1)]
    assert _picked(store, ids, min_solve_rate=1.0) == [("e", 2), ("c", 1)]


def test_at_most_per_level_a_level_lowest_level_first_and_never_this_rounds_problems(store):
    store, ids = store
    one_each = _picked(store, ids, per_level=1)
    assert one_each[0] == ("e", 2) and one_each[1][0] in "cd" and len(one_each) == 2
    assert _picked(store, ids, exclude=[ids["c"], ids["e"]]) == [("d", 1)]
    assert _picked(store, ids, before_round=1) == []
