"""`problem_counts` and `problem_totals` always equal a count of the attempts: after appends (new, repeated, failed),
inside `read_with`, after a reopen, and when an older store is migrated (backfilled)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from curriculum.records import Attempt, Problem
from curriculum.store import Read, Store, StoreError, schema
from curriculum.store.queries import StoreQueries

GROUPED = """SELECT problem_id, round, count(*), count_if(correct) FROM attempts
             GROUP BY problem_id, round ORDER BY problem_id, round"""
COUNTED = "SELECT problem_id, round, attempts, correct FROM problem_counts ORDER BY problem_id, round"


def tries(p: Problem, round: int, correct: int, total: int, first: int = 0) -> list[Attempt]:
    """Attempts `first`..`first + total - 1` at `p` in `round`, the first `correct` of them right."""
    return [
        Attempt(
            problem_id=p.id,
            policy_version=round,
            sample_index=first + i,
            round=round,
            completion=f"try {first + i}",
            extracted_answer=None,
            correct=i < correct,
            reward=float(i < correct),
            num_tokens=4,
        )
        for i in range(total)
    ]


TOTALS = "SELECT problem_id, attempts, correct FROM problem_totals ORDER BY problem_id"
GROUPED_TOTALS = "SELECT problem_id, count(*), count_if(correct) FROM attempts GROUP BY problem_id ORDER BY problem_id"


def assert_counts_match(store: Store) -> list[tuple]:
    counted = store.con.execute(COUNTED).fetchall()
    assert counted == store.con.execute(GROUPED).fetchall()
    assert store.con.execute(TOTALS).fetchall() == store.con.execute(GROUPED_TOTALS).fetchall()
    return counted


@pytest.fixture
def problems() -> list[Problem]:
    return [Problem(question=f"{i}+1", answer=str(i + 1), source="seed") for i in range(3)]


def test_counts_follow_every_append_and_survive_a_reopen(tmp_path: Path, problems):
    a, b, c = problems
    path = tmp_path / "store.duckdb"
    with Store(path) as store:
        store.append([*problems, *tries(a, 1, 2, 4), *tries(b, 1, 0, 3)])
        assert_counts_match(store)
        store.append(tries(a, 1, 2, 4))  # a retried batch: nothing new, nothing counted twice
        store.append([*tries(a, 1, 1, 4), *tries(a, 1, 3, 3, first=4)])  # old and new mixed; 3 new at round 1
        store.append(tries(a, 2, 1, 2) + tries(c, 2, 2, 2))
        assert assert_counts_match(store) == sorted(
            [(a.id, 1, 7, 5), (b.id, 1, 3, 0), (a.id, 2, 2, 1), (c.id, 2, 2, 2)], key=lambda r: (r[0], r[1])
        )
        bad = tries(b, 2, 1, 2)[1].model_copy(update={"num_tokens": -1})  # breaks a CHECK: nothing is written
        with pytest.raises(StoreError, match="nothing was written"):
            store.append([*tries(b, 2, 1, 1), bad])
        before = assert_counts_match(store)
        assert store.solve_rates()[a.id] == (9, 6, 6 / 9)
        assert store.solve_rates(last_n_rounds=1) == {a.id: (2, 1, 0.5), c.id: (2, 2, 1.0)}

    with Store(path) as store:  # reopened (a resumed run): the counts were committed with the attempts
        assert assert_counts_match(store) == before
        store.append(tries(b, 3, 1, 2))
        assert_counts_match(store)


def test_a_stage_reads_its_held_attempts_in_the_counts_and_leaves_none_behind(tmp_path: Path, problems):
    a, b, _ = problems
    with Store(tmp_path / "store.duckdb") as store:
        store.append([*problems, *tries(a, 1, 1, 2)])
        held = tries(a, 2, 2, 2) + tries(b, 2, 0, 2)
        seen = store.read_with(held, Read.of(StoreQueries.solve_rates))
        assert seen == {a.id: (4, 3, 0.75), b.id: (2, 0, 0.0)}
        assert assert_counts_match(store) == [(a.id, 1, 2, 1)]  # rolled back with the attempts


def test_an_older_store_is_backfilled_from_its_attempts(tmp_path: Path, problems, monkeypatch):
    a, b, _ = problems
    path = tmp_path / "store.duckdb"
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:6])  # a run directory from before the counts
    old = [*tries(a, 1, 1, 3), *tries(a, 2, 2, 2), *tries(b, 2, 0, 1)]
    with Store(path) as store:  # rows as that code wrote them, without the counts
        for table, rows in (("problems", problems), ("attempts", old)):
            store.con.register("old", pa.Table.from_pylist([r.model_dump() for r in rows]))
            store.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM old")
            store.con.unregister("old")
        assert not {"problem_counts", "problem_totals"} & {r[0] for r in store.con.execute("SHOW TABLES").fetchall()}
    monkeypatch.undo()

    with Store(path) as store:
        assert store.schema_version == schema.supported_schema_version()
        assert assert_counts_match(store) == sorted([(a.id, 1, 3, 1), (a.id, 2, 2, 2), (b.id, 2, 1, 0)])
        store.append(tries(b, 2, 1, 1, first=1))
        assert_counts_match(store)
