"""The DuckDB store: idempotent atomic appends, schema versions, queries, lineage, snapshots."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curriculum.records import (
    Attempt,
    ModelCall,
    PolicyVersion,
    PreferencePair,
    Problem,
    RejectedDraft,
    RoundStats,
    StageRecord,
)
from curriculum.store import Store, StoreError, schema
from curriculum.store import store as store_module
from curriculum.store.schema import Migration, supported_schema_version


def problem(question: str, parent: Problem | None = None, source: str = "seed", round_created: int = 0) -> Problem:
    return Problem(
        question=question,
        answer="1",
        source=source if parent is None else "teacher",
        parent_id=parent.id if parent else None,
        concepts=["addition", "carry"],
        knobs={"digits": 2},
        round_created=round_created,
    )


def attempts(p: Problem, round_: int, correct: int, total: int, policy_version: int | None = None) -> list[Attempt]:
    """``total`` attempts at ``p`` in one round, the first ``correct`` of them right."""
    version = round_ if policy_version is None else policy_version
    return [
        Attempt(
            problem_id=p.id,
            policy_version=version,
            sample_index=i,
            round=round_,
            completion=f"try {i}",
            extracted_answer="1" if i < correct else "2",
            correct=i < correct,
            reward=float(i < correct),
            num_tokens=5,
        )
        for i in range(total)
    ]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "run.duckdb"


@pytest.fixture
def store(path: Path):
    with Store(path) as s:
        yield s


# --------------------------------------------------------------------------- appends


def test_append_is_idempotent_within_a_call_across_calls_and_across_reopen(path: Path):
    a, b = problem("1+0"), problem("2+0")
    tries = attempts(a, 0, 2, 4)
    with Store(path) as s:
        assert s.append([a, b, a, *tries, tries[0]]) == 6  # duplicates within the call kept once
        assert s.append([a, b, *tries]) == 0
        assert s.append([problem("3+0"), *tries]) == 1
        assert s.counts()["attempts"] == 4
    with Store(path) as s:  # the key filter is rebuilt from the file
        assert s.append([a, *tries]) == 0
        assert s.counts() == {
            "problems": 3,
            "attempts": 4,
            "pairs": 0,
            "policies": 0,
            "rejected": 0,
            "rounds": 0,
            "stages": 0,
            "calls": 0,
        }
        assert s.con.execute("SELECT count(DISTINCT id) = count(*) FROM attempts").fetchone()[0]


def test_append_keeps_first_record_of_a_repeated_key(store: Store):
    first = PolicyVersion(version=1, round=0, parent_version=0, adapter_path="v1", algorithm="dpo")
    again = PolicyVersion(version=1, round=0, parent_version=0, adapter_path="other", algorithm="dpo")
    assert store.append([first, again]) == 1
    assert store.append([again]) == 0
    assert store.con.execute("SELECT adapter_path FROM policies").fetchall() == [("v1",)]


def test_key_filter_hit_that_is_not_stored_is_still_inserted(store: Store, monkeypatch):
    """A 64-bit hash collision must never drop a new record: hits are confirmed against the table."""
    a = problem("1+0")
    store.append([a])
    monkeypatch.setattr(store_module._KeyFilter, "might_contain", lambda self, hashes: hashes == hashes)
    assert store.append([a, problem("2+0"), problem("3+0")]) == 2
    assert store.counts()["problems"] == 3


def test_many_appends_of_mixed_sizes_are_all_recognised_on_resend(path: Path):
    """The key filter merges its sorted runs as appends come in; no stored key may get lost in a merge."""
    ps = [problem(f"{i}+1") for i in range(40)]
    sizes = [1, 3, 1, 7, 2, 12, 1, 5, 4, 4]  # uneven, so runs of every size get merged
    batches, start = [], 0
    with Store(path) as s:
        for size in sizes:
            batches.append(ps[start : start + size])
            start += size
            assert s.append(batches[-1]) == size
            assert s.append(ps[:start]) == 0  # everything so far, re-sent
        assert s.append([problem("new+1"), *ps]) == 1
        assert s.counts()["problems"] == start + 1


def test_key_filter_holds_every_hash_in_few_sorted_runs():
    rng = np.random.default_rng(0)
    added = [rng.integers(0, 2**64, size, dtype=np.uint64) for size in [5, 1, 300, 2, 2, 40, 7, 1000, 1, 64]]
    key_filter = store_module._KeyFilter(np.zeros(0, dtype=np.uint64))
    for hashes in added:
        key_filter.add(hashes)
    every = np.concatenate(added)
    assert key_filter.might_contain(every).all()
    assert key_filter.might_contain(np.sort(every)).all()
    assert not key_filter.might_contain(rng.integers(0, 2**64, 1000, dtype=np.uint64)).any()
    assert all((run[1:] >= run[:-1]).all() for run in key_filter._runs)
    assert len(key_filter._runs) <= int(np.log2(len(every))) + 1


def test_a_repeat_that_cannot_be_stored_is_dropped_not_an_error(store: Store):
    a = problem("1+0")
    good = attempts(a, 0, 1, 1)[0]
    broken = Attempt.model_construct(**{**good.__dict__, "round": "three"})  # same id, unstorable
    assert store.append([a, good, broken]) == 2
    assert store.round_attempts(0) == [good]


def test_failure_late_in_a_batch_leaves_every_table_unchanged(store: Store):
    a = problem("1+0")
    store.append([a, *attempts(a, 0, 1, 2)])
    before = store.counts()
    b = problem("2+0")
    good = attempts(b, 0, 1, 3)
    bad = good[-1].model_copy(update={"id": "a-bad", "num_tokens": -1})  # breaks CHECK (num_tokens >= 0)
    with pytest.raises(StoreError, match="nothing was written"):
        store.append([b, *good[:-1], bad])
    assert store.counts() == before
    # the failed call did not poison the key filter: the good part goes in afterwards
    assert store.append([b, *good]) == 4


def test_python_failure_between_tables_rolls_back_the_tables_already_written(store: Store, monkeypatch):
    insert = Store._insert_new_rows

    def fail_on_attempts(self, table, batch):
        if table.name == "attempts":
            raise RuntimeError("worker died")
        return insert(self, table, batch)

    monkeypatch.setattr(Store, "_insert_new_rows", fail_on_attempts)
    a = problem("1+0")
    with pytest.raises(StoreError, match="worker died"):
        store.append([a, *attempts(a, 0, 1, 2)])
    monkeypatch.undo()
    assert store.counts()["problems"] == 0
    assert store.append([a]) == 1


def test_unconvertible_field_is_named_and_nothing_is_written(store: Store):
    a = problem("1+0")
    broken = Attempt.model_construct(**{**attempts(a, 0, 1, 1)[0].__dict__, "round": "three"})
    with pytest.raises(StoreError, match=r"Attempt\.round"):
        store.append([a, broken])
    assert store.counts()["problems"] == 0


def test_append_rejects_foreign_objects_and_read_only_stores(path: Path):
    with Store(path) as s:
        with pytest.raises(StoreError, match="item 1 is a dict"):
            s.append([problem("1+0"), {"question": "x"}])
        s.append([problem("1+0")])
    with Store(path, read_only=True) as s:
        with pytest.raises(StoreError, match="read-only"):
            s.append([problem("2+0")])
        assert s.counts()["problems"] == 1


def test_records_read_back_equal_what_was_written(path: Path):
    root = problem("1+0")
    child = Problem(
        question='Is "½ + ⅓" \\ 5/6?\nSay\u2028why.',
        answer="5/6",
        solution="carry none",
        source="generator",
        parent_id=root.id,
        family="add",
        level=2,
        concepts=["a", "ü"],
        knobs={"digits": 1, "terms": 2**40},
        round_created=3,
        created_by="gen-0",
        model_version=4,
    )
    tries = [a.model_copy(update={"logprob": -1 / 3, "reward": 0.1}) for a in attempts(child, 3, 1, 2)]
    tries[1] = tries[1].model_copy(update={"extracted_answer": None, "logprob": None})
    with Store(path) as s:
        s.append([root, child, *tries])
        s.checkpoint()
    with Store(path, read_only=True) as s:
        assert s.get_problems([child.id, root.id]) == [child, root]
        assert s.round_attempts(3, [child.id]) == tries


# --------------------------------------------------------------------------- opening and schema


def test_second_writer_is_refused_with_a_clear_line(path: Path):
    Store(path).close()
    holder = textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(path)!r})
        print("held", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(StoreError) as caught:
            Store(path)
        message = str(caught.value)
        assert str(path) in message and "store actor" in message and "\n" not in message
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_newer_schema_is_refused(path: Path):
    Store(path).close()
    with duckdb.connect(str(path)) as con:
        con.execute("INSERT INTO schema_version (version, description) VALUES (99, 'from the future')")
    with pytest.raises(StoreError) as caught:
        Store(path)
    message = str(caught.value)
    assert str(path) in message and "99" in message and str(supported_schema_version()) in message
    assert "upgrade" in message and "\n" not in message


def test_older_schema_is_migrated_in_a_transaction(path: Path, monkeypatch):
    a = problem("1+0")
    with Store(path) as s:
        s.append([a])
    shipped = supported_schema_version()
    v2 = Migration(shipped + 1, "problems get a note", ("ALTER TABLE problems ADD COLUMN note VARCHAR DEFAULT ''",))
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, v2))

    with pytest.raises(StoreError, match="open it read-write once"):
        Store(path, read_only=True)
    with Store(path) as s:
        assert s.schema_version == shipped + 1
        assert s.get_problems([a.id]) == [a]
        assert s.con.execute("SELECT note FROM problems").fetchall() == [("",)]
        assert s.append([problem("2+0")]) == 1
        versions = [r[0] for r in s.con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()]
        assert versions == [m.version for m in schema.MIGRATIONS] and versions[-1] == shipped + 1


def write_old_store(path: Path, version: int, records: list, monkeypatch) -> None:
    """A store file at schema `version` holding problems and attempts, cut to the columns that version has."""
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:version])
    with Store(path) as s:
        for table, kind in (("problems", Problem), ("attempts", Attempt)):
            columns = {r[0] for r in s.con.execute(f"DESCRIBE {table}").fetchall()}
            rows = [{k: v for k, v in r.model_dump().items() if k in columns} for r in records if isinstance(r, kind)]
            if rows:
                s.con.register("old", pa.Table.from_pylist(rows))
                s.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM old")
                s.con.unregister("old")
    monkeypatch.undo()


def test_migration_4_moves_attempts_to_zstd_completions_and_keeps_every_row(path: Path, monkeypatch):
    a = problem("1+0")
    tries = attempts(a, 0, 2, 4)
    write_old_store(path, 3, [a, *tries], monkeypatch)  # a file from before it
    with Store(path) as s:
        assert s.schema_version >= 4
        assert s.round_attempts(0) == tries
        table_sql = s.con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'attempts'").fetchone()[0]
        assert "completion VARCHAR USING COMPRESSION ZSTD NOT NULL" in table_sql
        assert s.append(tries) == 0  # the key filter is built from the rebuilt table
        bad = tries[0].model_copy(update={"id": "a-bad", "num_tokens": -1})
        with pytest.raises(StoreError, match="nothing was written"):  # the CHECKs came along
            s.append([bad])
        assert s.counts()["attempts"] == 4


def test_migration_5_keeps_old_attempts_and_stores_token_ids_and_logprobs_exactly(path: Path, monkeypatch):
    a = problem("1+0")
    old = attempts(a, 0, 2, 4)
    write_old_store(path, 4, [a, *old], monkeypatch)
    logprobs = [-0.1, -1 / 3, -2.718281828459045, float(np.float32(-0.7))]
    sampled = [
        Attempt(**{**t.model_dump(exclude={"id"}), "round": 1, "token_ids": [3, 1, 4, 1], "token_logprobs": logprobs})
        for t in old
    ]
    with Store(path) as s:
        assert s.schema_version >= 5
        assert s.round_attempts(0) == old  # no tokens: empty lists
        assert s.append(sampled) == 4
        assert s.round_attempts(1) == sampled  # every float read back as it was
        assert s.con.execute("SELECT sum(len(token_ids)) FROM attempts").fetchone()[0] == 16


def test_failed_migration_leaves_the_file_at_its_old_version(path: Path, monkeypatch):
    with Store(path) as s:
        s.append([problem("1+0")])
    shipped = supported_schema_version()
    broken = Migration(
        shipped + 1, "half done", ("ALTER TABLE problems ADD COLUMN note VARCHAR", "SELECT * FROM no_such_table")
    )
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    with pytest.raises(
        StoreError, match=f"migration to schema version {shipped + 1} failed.*unchanged at version {shipped}"
    ):
        Store(path)
    monkeypatch.undo()
    with Store(path) as s:
        assert s.schema_version == shipped
        columns = [r[0] for r in s.con.execute("DESCRIBE problems").fetchall()]
        assert "note" not in columns and s.counts()["problems"] == 1


def test_foreign_duckdb_file_and_missing_file_are_refused(tmp_path: Path):
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(StoreError, match="not a curriculum store"):
        Store(other)
    with pytest.raises(StoreError, match="no store file"):
        Store(tmp_path / "missing.duckdb", read_only=True)


# --------------------------------------------------------------------------- solve rates and selection


@pytest.fixture
def graded(store: Store) -> tuple[Store, list[Problem]]:
    """Four problems with known rates: p0 2/10 then 8/10; p1 5/10 twice; p2 3/10 once; p3 unattempted."""
    ps = [problem(f"{i}+0") for i in range(4)]
    store.append(ps)
    store.append(attempts(ps[0], 0, 2, 10) + attempts(ps[0], 1, 8, 10))
    store.append(attempts(ps[1], 0, 5, 10) + attempts(ps[1], 1, 5, 10))
    store.append(attempts(ps[2], 0, 3, 10))
    return store, ps


def test_solve_rates_overall_per_policy_and_last_rounds(graded):
    store, ps = graded
    overall = store.solve_rates()
    assert set(overall) == {ps[0].id, ps[1].id, ps[2].id}
    assert overall[ps[0].id] == (20, 10, 0.5)
    assert overall[ps[2].id].rate == pytest.approx(0.3)
    assert store.solve_rates(policy_version=0)[ps[0].id] == (10, 2, 0.2)
    last = store.solve_rates(last_n_rounds=1)
    assert set(last) == {ps[0].id, ps[1].id} and last[ps[0].id].rate == pytest.approx(0.8)
    assert set(store.solve_rates(problem_ids=[ps[1].id, "nope"])) == {ps[1].id}


def test_problems_in_band_edges_counts_and_scope(graded):
    store, ps = graded
    assert [p.id for p in store.problems_in_band(0.3, 0.5)] == sorted([ps[0].id, ps[1].id, ps[2].id])
    assert [p.id for p in store.problems_in_band(0.3, 0.5, min_attempts=20)] == sorted([ps[0].id, ps[1].id])
    assert [p.id for p in store.problems_in_band(0.6, 1.0, last_n_rounds=1)] == [ps[0].id]
    assert [p.id for p in store.problems_in_band(0.0, 0.25, policy_version=0)] == [ps[0].id]
    assert store.problems_in_band(0.31, 0.49) == []
    with pytest.raises(ValueError, match="low=0.7, high=0.3"):
        store.problems_in_band(0.7, 0.3)


def test_accuracy_history_per_problem_per_round(graded):
    store, ps = graded
    history = store.accuracy_history()
    assert history[ps[0].id] == pytest.approx({0: 0.2, 1: 0.8})
    assert list(store.accuracy_history([ps[2].id])) == [ps[2].id]


# --------------------------------------------------------------------------- lineage and plain reads


def test_ancestors_and_descendants_walk_the_lineage(store: Store):
    root = problem("root")
    a = problem("a", parent=root, round_created=1)
    b = problem("b", parent=a, round_created=2)
    c = problem("c", parent=root, round_created=1)
    d = problem("d", parent=a, round_created=2)
    other = problem("other")
    store.append([root, a, b, c, d, other])

    assert store.ancestors(b.id) == [a, root]
    assert store.ancestors(root.id) == []
    family = store.descendants(root.id)
    assert family[:2] == sorted([a, c], key=lambda p: p.id)
    assert family[2:] == sorted([b, d], key=lambda p: p.id)
    assert store.descendants(b.id) == []
    with pytest.raises(KeyError, match="nope"):
        store.ancestors("nope")


def test_lineage_terminates_on_a_cycle(store: Store):
    x = Problem(id="x", question="x", answer="1", source="teacher", parent_id="y")
    y = Problem(id="y", question="y", answer="1", source="teacher", parent_id="x")
    store.append([x, y])
    assert store.ancestors("x") == [y]
    assert store.descendants("x") == [y]


def test_plain_reads(store: Store):
    seed = problem("s")
    later = problem("t", parent=seed, round_created=2)
    store.append([seed, later, *attempts(seed, 0, 1, 2, policy_version=1), *attempts(seed, 1, 0, 2, policy_version=0)])
    assert store.get_problems(["missing", later.id, seed.id, later.id]) == [later, seed]
    assert store.problems() == [seed, later]
    assert store.problems(source="teacher") == [later]
    assert store.problems(round=0) == [seed]
    assert [(a.policy_version, a.sample_index) for a in store.round_attempts(0)] == [(1, 0), (1, 1)]
    assert store.round_attempts(1, [later.id]) == []
    store.append(
        [
            PolicyVersion(
                version=v, round=v, parent_version=v - 1 if v else None, adapter_path=f"v{v}", algorithm="dpo"
            )
            for v in (0, 2, 1)
        ]
    )
    assert store.counts()["policies"] == 3


# --------------------------------------------------------------------------- snapshots


def _every_kind_of_record() -> dict[str, list]:
    p = problem("1+0")
    when = datetime(2024, 5, 1, 12, 30, 15, 123456)
    return {
        "problems": [p, problem("1+1", parent=p)],
        "attempts": attempts(p, 0, 1, 2),
        "pairs": [PreferencePair(problem_id=p.id, policy_version=0, round=0, prompt="q", chosen="a", rejected="b")],
        "policies": [
            PolicyVersion(
                version=1,
                round=0,
                parent_version=0,
                adapter_path="v1",
                algorithm="dpo",
                metrics={"loss": 0.5},
                created_at=when,
            )
        ],
        "rejected": [RejectedDraft(source="teacher", parent_id=p.id, text="bad", reason="duplicate", round=0)],
        "rounds": [
            RoundStats(round=0, policy_version=1, metrics={"acc": 0.25}, seconds={"solve": 1.5}, created_at=when)
        ],
        "stages": [StageRecord(round=1, stage="select", state='{"round": 1}', created_at=when)],
        "calls": [
            ModelCall(
                round=1,
                source="teacher",
                node="write",
                parent_id=p.id,
                template="teacher/write@0",
                prompt_hash="h",
                prompt="p",
                output="o",
                parsed="{}",
                drafts=[p.id],
                latency_s=0.5,
                prompt_tokens=3,
                completion_tokens=None,
                created_at=when,
            )
        ],
    }


def _records_from_parquet(file: Path, record_type) -> list:
    table = pq.read_table(file)
    rows = table.to_pylist()
    for column in table.schema:
        if str(column.type).startswith("map"):
            for row in rows:
                row[column.name] = dict(row[column.name])
    return [record_type.model_validate(row) for row in rows]


def test_parquet_snapshot_round_trips_every_table(store: Store, tmp_path: Path):
    records = _every_kind_of_record()
    store.append([r for group in records.values() for r in group])
    snapshot = store.export_parquet(tmp_path / "snapshot")
    assert sorted(f.name for f in snapshot.iterdir()) == sorted(f"{name}.parquet" for name in records)
    for name, expected in records.items():
        got = _records_from_parquet(snapshot / f"{name}.parquet", type(expected[0]))
        key = "version" if name == "policies" else "round" if name == "rounds" else "id"
        assert sorted(got, key=lambda r: getattr(r, key)) == sorted(expected, key=lambda r: getattr(r, key))


def test_parquet_snapshot_replaces_the_previous_one_whole(path: Path, tmp_path: Path):
    target = tmp_path / "snapshots" / "latest"
    with Store(path) as s:
        s.append([problem("1+0")])
        s.export_parquet(target)
        s.append([problem("2+0")])
        s.export_parquet(target)
    assert pq.read_table(target / "problems.parquet").num_rows == 2
    assert [p.name for p in target.parent.iterdir()] == ["latest"]  # no staging or retired folders left
    with Store(path, read_only=True) as s:  # a read-only store can snapshot too
        s.export_parquet(tmp_path / "ro")
    assert pq.read_table(tmp_path / "ro" / "problems.parquet").num_rows == 2


def test_problem_ids_and_counts_by_source(tmp_path):
    from curriculum.records import Problem
    from curriculum.store import Store

    with Store(tmp_path / "s.duckdb") as store:
        store.append(
            [
                Problem(question="1+1=?", answer="2", source="seed"),
                Problem(question="2+2=?", answer="4", source="teacher", round_created=1),
                Problem(question="3+3=?", answer="6", source="teacher", round_created=2),
            ]
        )
        assert sorted(store.problem_ids()) == store.problem_ids() and len(store.problem_ids()) == 3
        assert store.problem_counts_by_source() == {"seed": 1, "teacher": 2}
        assert store.problem_counts_by_source(round=2) == {"teacher": 1}
