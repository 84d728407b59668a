"""The DuckDB store: every problem, attempt, pair, policy, rejected draft and round.

One file holds the whole run. Only ONE process may open it read-write: the store
actor during a run. DuckDB enforces this with a file lock, and it also refuses
read-only openers while a writer holds the file, so notebooks read the Parquet
snapshots written by :meth:`Store.export_snapshot` (or the file after the run ends).
A ``Store`` object is not thread-safe: use it from one thread (a Ray actor's
default).

Writes go through :meth:`Store.append`, which is idempotent (record ids derive
from content, and a key already present is skipped, so a retried batch inserts
nothing twice) and atomic (one transaction per call). The same transaction adds
new attempts to ``problem_counts`` (attempts and correct ones per problem and round)
and ``problem_totals`` (per problem, all rounds), so solve rates and a round's
selection read those tables, not every attempt.

Keys: ``id`` for problems, attempts, pairs and rejected drafts; ``version`` for
policies; ``round`` for rounds. A key already stored is skipped, found through a
key filter held in memory (sorted 64-bit hashes of the stored keys, 8 bytes a
row, built at the first append after opening; every hit is confirmed against the table, so a hash
collision never drops a record). The small tables also declare their key as
PRIMARY KEY, a second guard. The attempts table, by far the largest, does not:
with DuckDB's primary-key index on it, ingest of 0.3M and 1M attempts (the
bench/store.py data, 2 cores) was 27-30% slower; appending through this class
is what keeps ``attempts.id`` unique. Its ``completion`` column, most of the
bytes, is zstd-compressed (migration 4): DuckDB's default string compression
made the checkpoint ~35% slower and the file ~50% larger (bench/store.py).

The schema is versioned: ``schema_version`` records each applied migration, and
opening an older file migrates it in one transaction. Add a migration by
appending to ``MIGRATIONS``; never edit one that has shipped.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from curriculum.records import (
    Record,
)
from curriculum.store import schema, snapshots
from curriculum.store.queries import READS, R, Read, StoreQueries
from curriculum.store.rows import StoreError, _first_of_each, _group_by_table, _KeyFilter, _to_arrow, first_line

CHECKPOINT_THRESHOLD = "256MB"
# New attempts added to `problem_counts` and `problem_totals` (schema migrations 7 and 8), which
# solve rates and the selection read instead of every attempt.
_COUNT_ATTEMPTS = (
    """INSERT INTO problem_counts
    SELECT problem_id, round, count(*), count_if(correct) FROM _incoming GROUP BY problem_id, round
    ON CONFLICT (problem_id, round) DO UPDATE
    SET attempts = attempts + excluded.attempts, correct = correct + excluded.correct""",
    """INSERT INTO problem_totals
    SELECT problem_id, count(*), count_if(correct) FROM _incoming GROUP BY problem_id
    ON CONFLICT (problem_id) DO UPDATE
    SET attempts = attempts + excluded.attempts, correct = correct + excluded.correct""",
)


# --------------------------------------------------------------------------- store


class Store(StoreQueries):
    """A curriculum run's DuckDB file. See the module docstring for the rules."""

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._key_filters: dict[str, _KeyFilter] = {}
        self._in_transaction = False  # inside `read_with`'s transaction
        if read_only and not self.path.exists():
            raise StoreError(f"{self.path}: no store file here to open read-only")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            mode = "read-only" if read_only else "read-write"
            raise StoreError(
                f"{self.path}: cannot open {mode}: {first_line(exc)} "
                "(only the store actor may hold the file during a run; read a Parquet snapshot instead)"
            ) from exc
        try:
            if not read_only:
                # Fewer, larger checkpoints: ~30% less ingest work than the 16 MB default
                # (measured, bench/store.py); crash recovery replays at most this much WAL.
                self._con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
            self.schema_version = self._prepare_schema()
        except BaseException:
            self._con.close()
            raise

    # -- lifecycle

    def close(self) -> None:
        """Close the file (DuckDB checkpoints on close). Safe to call twice."""
        if self._con is not None:
            con, self._con = self._con, None
            try:
                con.close()
            except duckdb.Error as exc:  # the final checkpoint failed; the WAL still holds every commit
                raise StoreError(f"{self.path}: closing failed: {first_line(exc)}{_hint(exc)}") from exc

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection, for ad-hoc reads; every write goes through :meth:`append`."""
        if self._con is None:
            raise StoreError(f"{self.path}: the store is closed")
        return self._con

    def checkpoint(self) -> None:
        """Move committed rows from the WAL into the database file.

        DuckDB also checkpoints by itself past ``CHECKPOINT_THRESHOLD`` of WAL and on close. If it
        fails (disk full), committed rows stay in the WAL and the next open replays them.
        """
        try:
            self.con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: checkpoint failed: {first_line(exc)}{_hint(exc)}") from exc

    # -- schema

    def _prepare_schema(self) -> int:
        found = self._found_schema_version()
        supported = schema.supported_schema_version()
        if found > supported:
            raise StoreError(
                f"{self.path}: schema version {found} is newer than this code supports ({supported}); "
                "upgrade the curriculum package to open it"
            )
        if found < supported:
            if self.read_only:
                raise StoreError(
                    f"{self.path}: schema version {found} needs migration to {supported}; "
                    "open it read-write once to migrate"
                )
            self._migrate(found)
        return supported

    def _found_schema_version(self) -> int:
        tables = {
            row[0]
            for row in self.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        if "schema_version" not in tables:
            if tables:
                raise StoreError(
                    f"{self.path}: has tables {sorted(tables)} but no schema_version table; "
                    "it is not a curriculum store"
                )
            return 0
        return self.con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]

    def _migrate(self, found: int) -> None:
        pending = [m for m in schema.MIGRATIONS if m.version > found]
        current = found
        self.con.begin()
        try:
            self.con.execute(schema.VERSION_TABLE)
            for migration in pending:
                current = migration.version
                for statement in migration.statements:
                    self.con.execute(statement)
                self.con.execute(
                    "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                    [migration.version, migration.description],
                )
            self.con.commit()
        except BaseException as exc:
            self.con.rollback()
            if not isinstance(exc, duckdb.Error):
                raise
            raise StoreError(
                f"{self.path}: migration to schema version {current} failed: {first_line(exc)}; "
                f"the file is unchanged at version {found}"
            ) from exc

    # -- writes

    def append(self, records: Sequence[Record]) -> int:
        """Insert the records whose key is not yet stored; return how many were inserted.

        Records may be of several types (grouped by table). Duplicates within the
        call keep their first occurrence. The whole call is one transaction: on
        any failure nothing is written and ``StoreError`` is raised.
        """
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only; only the store actor appends")
        if not isinstance(records, (list, tuple)):
            records = list(records)  # a generator would be spent by the first pass
        batches = [(table, _to_arrow(table, group)) for table, group in _group_by_table(records)]
        if not batches:
            return 0
        inserted = 0
        new_hashes: list[tuple[str, np.ndarray]] = []
        self.con.begin()
        try:
            for table, batch in batches:
                count, hashes = self._insert_new_rows(table, batch)
                inserted += count
                new_hashes.append((table.name, hashes))
            self.con.commit()
        except BaseException as exc:
            _rollback(self.con)
            if not isinstance(exc, Exception):  # KeyboardInterrupt and the like pass through
                raise
            names = ", ".join(table.name for table, _ in batches)
            raise StoreError(
                f"{self.path}: append to {names} failed, nothing was written: {first_line(exc)}{_hint(exc)}"
            ) from exc
        for name, hashes in new_hashes:  # only once committed
            self._key_filters[name].add(hashes)
        return inserted

    def read_with(self, held: Sequence[Record], read: Read[R]) -> R:
        """What `read` (one of `StoreQueries`'s methods with its arguments) answers as if `held` were
        stored, leaving the store as it was: the records are inserted in a transaction that is
        rolled back after the read. A stage reads its own writes this way and commits them once,
        with its stage record (run/stages.py), so a stage killed before its commit leaves none of
        itself behind."""
        if read.query not in READS and read.query not in (Store.export_parquet, Store.export_snapshot):
            raise StoreError(f"read_with: {read.query.__qualname__} is not a read of the store")
        if not held:
            return read(self)
        batches = [(table, _to_arrow(table, group)) for table, group in _group_by_table(list(held))]
        self.con.begin()
        self._in_transaction = True
        try:
            for table, batch in batches:
                self._insert_new_rows(table, batch)  # the key filters stay those of the committed rows
            return read(self)
        finally:
            self._in_transaction = False
            _rollback(self.con)

    def _insert_new_rows(self, table: schema.Table, batch: pa.Table) -> tuple[int, np.ndarray]:
        """Insert the rows of ``batch`` whose key is neither stored nor repeated earlier in the batch
        (the first of a repeated key is kept); return (count, their key hashes, sorted)."""
        key_filter = self._key_filter(table)
        self.con.register("_incoming", batch)
        try:
            hashes = self.con.execute(f"SELECT hash({table.key}) AS h FROM _incoming").fetchnumpy()["h"]
            ordered = np.sort(hashes)
            keep = None
            if (ordered[1:] == ordered[:-1]).any():  # a hash repeats: maybe a key repeated in the batch
                keep = _first_of_each(batch.column(table.key).to_pylist())
            if key_filter.might_contain(ordered).any():  # the common miss is decided on sorted hashes
                maybe_present = key_filter.might_contain(hashes)
                if keep is not None:
                    maybe_present &= keep
                present = self._keys_present(table, batch.filter(pa.array(maybe_present)).column(table.key))
                if present:
                    stored = np.array([key in present for key in batch.column(table.key).to_pylist()])
                    keep = ~stored if keep is None else keep & ~stored
            if keep is not None and not keep.all():
                batch, hashes = batch.filter(pa.array(keep)), hashes[keep]
                ordered = np.sort(hashes)
                self.con.unregister("_incoming")
                self.con.register("_incoming", batch)
            if batch.num_rows:
                self.con.execute(f"INSERT INTO {table.name} BY NAME SELECT * FROM _incoming")
                if table.name == "attempts":  # in the same transaction: the counts never disagree
                    for count in _COUNT_ATTEMPTS:
                        self.con.execute(count)
        finally:
            self.con.unregister("_incoming")
        return batch.num_rows, ordered

    def _key_filter(self, table: schema.Table) -> _KeyFilter:
        if table.name not in self._key_filters:
            hashes = self.con.execute(f"SELECT hash({table.key}) AS h FROM {table.name}").fetchnumpy()["h"]
            self._key_filters[table.name] = _KeyFilter(hashes)
        return self._key_filters[table.name]

    def _keys_present(self, table: schema.Table, keys: pa.ChunkedArray) -> set[Any]:
        """Which of ``keys`` the table already holds (one scan of the key column)."""
        self.con.register("_candidates", pa.table({"k": keys}))
        try:
            rows = self.con.execute(
                f"SELECT t.{table.key} FROM {table.name} t SEMI JOIN _candidates c ON t.{table.key} = c.k"
            ).fetchall()
        finally:
            self.con.unregister("_candidates")
        return {row[0] for row in rows}

    def forget_token_arrays(self, round: int) -> int:
        """Empty the token ids and log-probs of round `round`'s attempts (once no Learner reads them:
        run/stages.py's Checkpoint); returns how many attempts had some. The only write besides
        `append`: it changes no key and no value a report reads, and doing it twice changes nothing."""
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only; only the store actor writes")
        try:
            count = self.con.execute(
                "UPDATE attempts SET token_ids = [], token_logprobs = [] "
                "WHERE round = ? AND (len(token_ids) > 0 OR len(token_logprobs) > 0)",
                [round],
            ).fetchone()
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: emptying round {round}'s token arrays failed: {first_line(exc)}") from exc
        return int(count[0]) if count else 0

    # -- snapshots

    def export_parquet(self, directory: str | Path) -> Path:
        """Write every table to ``directory/<table>.parquet``, replacing a previous snapshot.

        The files are written into a temporary folder beside ``directory`` inside
        one read transaction (so the tables agree with each other) and then
        renamed into place, so a reader never sees a half-written snapshot. When
        replacing, the old folder is renamed away first: for that instant the
        folder is absent, never partial.
        """
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
        staging.mkdir()
        try:
            if self._in_transaction:  # inside `read_with`: the held records are part of the snapshot
                self._copy_tables(staging)
            else:
                self.con.begin()
                try:
                    self._copy_tables(staging)
                finally:
                    self.con.rollback()  # read-only work: nothing to commit
            if target.exists():
                retired = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
                target.rename(retired)
                staging.rename(target)
                shutil.rmtree(retired)
            else:
                staging.rename(target)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, duckdb.Error):
                raise StoreError(f"{self.path}: Parquet export to {target} failed: {first_line(exc)}") from exc
            raise
        return target

    def export_snapshot(self, root: str | Path, round: int, compact_every: int, token_arrays: bool = False) -> Path:
        """Round `round`'s new rows of every table into the incremental snapshots under `root`
        (store/snapshots.py: one file per table per round, merged every `compact_every` rounds; the
        attempts' token arrays only with `token_arrays`), read in one transaction so the tables
        agree with each other."""
        try:
            if self._in_transaction:  # inside `read_with`: the held records are part of the snapshot
                return snapshots.export_round(self.con, Path(root), round, compact_every, token_arrays)
            self.con.begin()
            try:
                return snapshots.export_round(self.con, Path(root), round, compact_every, token_arrays)
            finally:
                self.con.rollback()  # read-only work: nothing to commit
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: snapshot of round {round} to {root} failed: {first_line(exc)}") from exc

    def _copy_tables(self, staging: Path) -> None:
        for table in schema.TABLES:
            file = str(staging / f"{table.name}.parquet").replace("'", "''")
            self.con.execute(f"COPY {table.name} TO '{file}' (FORMAT parquet)")


# --------------------------------------------------------------------------- helpers


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is still open: a failed COMMIT (e.g. the disk is full) has
    already ended it, and a second error here would hide the first."""
    try:
        con.rollback()
    except duckdb.TransactionException:
        pass


def _hint(exc: BaseException) -> str:
    """What to do about an I/O failure, for the one-line error."""
    text = str(exc).lower()
    if any(s in text for s in ("no space left", "file too large", "disk quota")):
        return " (the disk is full: free space, then `curriculum resume RUN_DIR`)"
    if "permission denied" in text or "read-only file system" in text:
        return " (the store file is not writable: fix its permissions, then `curriculum resume RUN_DIR`)"
    return ""
