"""Incremental Parquet snapshots (store/snapshots.py): each round writes its new rows, a reader sees
the run as of any round, per-round files are merged every K rounds, old run directories still open."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curriculum.records import Attempt, Problem, RoundStats, StageRecord
from curriculum.store import Store, StoreError, schema
from curriculum.store.snapshots import MANIFEST, open_snapshots, round_column, snapshot_round

ROUNDS, EVERY = 7, 3


def _round_records(r: int) -> list:
    problem = Problem(question=f"{r}+1", answer=str(r + 1), source="seed" if r == 0 else "teacher", round_created=r)
    attempts = [
        Attempt(
            problem_id=problem.id,
            policy_version=r,
            sample_index=i,
            round=r,
            completion=f"r{r} try {i}",
            extracted_answer=None,
            correct=i == 0,
            reward=float(i == 0),
            num_tokens=3,
        )
        for i in range(2)
    ]
    stages = [StageRecord(round=r, stage=stage, state="{}") for stage in ("select", "learn")]
    return [problem, *attempts, *stages, RoundStats(round=r, policy_version=r)]


def _late(r: int) -> list:
    """What a round commits after its snapshot: the snapshot and checkpoint stages' records."""
    return [StageRecord(round=r, stage=stage, state="{}") for stage in ("snapshot", "checkpoint")]


def _rows(con, table: schema.Table, where: str = "") -> list[tuple]:
    columns = ", ".join(c for c in table.columns if c != "created_at")  # created_at is not compared
    return sorted(con.execute(f"SELECT {columns} FROM {table.name} {where}").fetchall(), key=repr)


def _run(path: Path, root: Path, rounds: int = ROUNDS, every: int = EVERY) -> Store:
    store = Store(path)
    store.append(_round_records(0))  # round 0 (the seeds) has no snapshot of its own
    store.append(_late(0))
    for r in range(1, rounds + 1):
        store.append(_round_records(r))
        store.export_snapshot(root, r, every)
        store.append(_late(r))
    return store


def test_the_run_as_of_every_round_is_the_store_up_to_it(tmp_path: Path):
    root = tmp_path / "snapshots"
    with _run(tmp_path / "s.duckdb", root) as store:
        for as_of in range(ROUNDS + 1):
            con, got = open_snapshots(root, None if as_of == ROUNDS else as_of)
            assert got == as_of
            for table in schema.TABLES:
                column = round_column(table)
                expected = _rows(store.con, table, f"WHERE {column} <= {as_of}")
                if as_of == ROUNDS:  # the newest round's late records come with the next snapshot
                    expected = [row for row in expected if row not in _rows_of(store, _late(ROUNDS))]
                assert _rows(con, table) == expected, (table.name, as_of)
            con.close()
    with pytest.raises(StoreError, match="reach round 7, not 8"):
        open_snapshots(root, ROUNDS + 1)


def _rows_of(store: Store, records: list) -> list[tuple]:
    ids = ", ".join(f"'{r.id}'" for r in records)
    return _rows(store.con, schema.TABLE_BY_NAME["stages"], f"WHERE id IN ({ids})")


def test_each_round_writes_its_rows_only_and_compaction_bounds_the_files(tmp_path: Path):
    root = tmp_path / "snapshots"
    _run(tmp_path / "s.duckdb", root, rounds=10, every=3).close()
    manifest = json.loads((root / MANIFEST).read_text())
    attempts = manifest["tables"]["attempts"]
    # rounds 1-2 merged at round 3, 3-5 at round 6, 6-8 at round 9; round 9's and 10's files on their own
    assert [(e["from"], e["to"]) for e in attempts] == [(1, 2), (3, 5), (6, 8), (9, 9), (10, 10)]
    assert all(Path(e["path"]).parts[1] == f"from_round={e['from']:04d}" for e in attempts)
    listed = {root / e["path"] for entries in manifest["tables"].values() for e in entries}
    on_disk = {p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST}
    assert on_disk == listed  # merged and temporary files are gone
    import duckdb

    newest = duckdb.connect().execute(f"SELECT round FROM read_parquet('{root / attempts[-1]['path']}')").fetchall()
    assert newest == [(10,), (10,)]  # the round's file holds that round's rows, not the run's


def test_a_repeated_snapshot_of_a_round_replaces_it(tmp_path: Path):
    """A resumed run repeats a snapshot whose stage was not committed: no row twice."""
    root = tmp_path / "snapshots"
    with _run(tmp_path / "s.duckdb", root, rounds=3) as store:
        store.export_snapshot(root, 3, EVERY)
        store.export_snapshot(root, 3, EVERY)
        con, _ = open_snapshots(root)
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM attempts").fetchone() == (8, 8)
        assert con.execute("SELECT count(*) FROM stages WHERE stage = 'checkpoint'").fetchone() == (4,)
        with pytest.raises(StoreError, match="round 2 asked after round 3"):
            store.export_snapshot(root, 2, EVERY)


def test_a_snapshot_killed_before_its_manifest_leaves_the_previous_one(tmp_path: Path):
    root = tmp_path / "snapshots"
    with _run(tmp_path / "s.duckdb", root, rounds=2) as store:
        before = (root / MANIFEST).read_text()
        stray = root / "attempts" / "from_round=0003" / ".part-dead.tmp"
        stray.parent.mkdir()
        stray.write_bytes(b"half a file")
        assert (root / MANIFEST).read_text() == before and snapshot_round(root) == 2
        con, _ = open_snapshots(root)
        assert con.execute("SELECT max(round) FROM attempts").fetchone() == (2,)
        store.append(_round_records(3))
        store.export_snapshot(root, 3, EVERY)
        assert not stray.exists()


def test_an_old_run_directory_opens_its_round_folders(tmp_path: Path):
    root = tmp_path / "snapshots"
    with Store(tmp_path / "s.duckdb") as store:
        store.append(_round_records(0) + _round_records(1))
        store.export_parquet(root / "round_0001")
        store.append(_round_records(2))
        store.export_parquet(root / "round_0002")
    assert snapshot_round(root) == 2
    con, r = open_snapshots(root)
    assert r == 2 and con.execute("SELECT count(*) FROM attempts").fetchone() == (6,)
    con, r = open_snapshots(root, 1)
    assert r == 1 and con.execute("SELECT count(*) FROM attempts").fetchone() == (4,)
    with pytest.raises(StoreError, match="no snapshot of round 5"):
        open_snapshots(root, 5)
