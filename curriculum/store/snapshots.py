"""Incremental Parquet snapshots of the store: each round writes only its new rows, and a reader
opens the run as of any round as one DuckDB view per table.

Layout, under a run's `snapshots/` folder::

    manifest.json                                  which files make up the snapshot (written last)
    <table>/from_round=NNNN/part-<tag>.parquet     the rows round NNNN's snapshot added
    <table>/from_round=NNNN/block-<tag>.parquet    several rounds' files merged (every K rounds)

The round's snapshot of a table holds the rows whose round (`round`, or `round_created` for
problems) is that round's, plus rows of the round before that were committed after that round's
snapshot (the snapshot and checkpoint stages' records; they are found by key against the previous
file). A table without a round column is small and written whole each round. Every round writes a
file per table (an empty one too), so every table has a file to open.

Each file is written under a temporary name and renamed; the manifest, written atomically after
every file is in place, lists the files readers open: a reader never sees a half-written round,
and a round killed before its manifest is written leaves the previous snapshot as it was. Every
`compact_every` rounds the per-round files (all but the newest, which the next round's late rows
are found against) are merged into one block, so a 1,000-round run keeps about 1000/K + K files a
table, not 1,000. Files the manifest no longer lists are deleted: a DuckDB view opened before a
compaction fails on its next query and the run must be opened again.

A rows' round never precedes the previous snapshot's round (a stage writes rows of its own round,
and only the snapshot and checkpoint stages commit after a snapshot); `export_round` relies on it.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import duckdb

from curriculum.files import atomic_write_json
from curriculum.store import schema
from curriculum.store.rows import StoreError

MANIFEST = "manifest.json"
PARTITION = "from_round"  # the Hive partition key: the round whose snapshot wrote the file
FORMAT = 2  # 1: snapshots/round_NNNN/<table>.parquet, every row of every table each round
# Per-token columns, written empty unless asked for: at 256 tokens ~3 KB an attempt, most of its bytes.
TOKEN_ARRAYS = {"attempts": {"token_ids": "INTEGER[]", "token_logprobs": "DOUBLE[]"}}
_OLD_SNAPSHOT = re.compile(r"^round_(\d{4,})$")


def round_column(table: schema.Table) -> str | None:
    """The column that says which round wrote a row of `table` (None: the table is written whole)."""
    for column in ("round", "round_created"):
        if column in table.columns:
            return column
    return None


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _file_list(root: Path, entries: list[dict[str, Any]]) -> str:
    return "[" + ", ".join(_sql_path(root / e["path"]) for e in entries) + "]"


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of the snapshots under `root` (None: no incremental snapshot written yet)."""
    try:
        manifest: dict[str, Any] = json.loads((root / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    if manifest.get("format") != FORMAT:
        raise StoreError(f"{root / MANIFEST}: snapshot format {manifest.get('format')} is not {FORMAT}")
    return manifest


def export_round(
    con: duckdb.DuckDBPyConnection, root: Path, round: int, compact_every: int, token_arrays: bool = False
) -> Path:
    """Write round `round`'s new rows of every table under `root` (see the module docstring), merge
    per-round files every `compact_every` rounds, then write the manifest. `con` must see the store
    as of the end of the round (the caller holds a read transaction). Running it again for the same
    round (a resumed run) writes that round again. Attempts' token ids and log-probs (what a Learner
    reads, not a report) are written empty unless `token_arrays` (store.keep_token_arrays)."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(root)
    if manifest is None:
        previous, listed = None, {}
    elif manifest["round"] > round:
        raise StoreError(f"{root}: snapshot of round {round} asked after round {manifest['round']}'s")
    elif manifest["round"] == round:  # a resumed run repeats its last snapshot
        previous = manifest["previous"]
        listed = {name: [e for e in entries if e["from"] != round] for name, entries in manifest["tables"].items()}
    else:
        previous, listed = manifest["round"], manifest["tables"]
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in schema.TABLES:
        column = round_column(table)
        entries = listed.get(table.name, [])
        columns = "*"
        if table.name in TOKEN_ARRAYS and not token_arrays:
            columns = f"* REPLACE ({', '.join(f'[]::{t} AS {c}' for c, t in TOKEN_ARRAYS[table.name].items())})"
        if column is None:
            query, entries = f"SELECT {columns} FROM {table.name}", []
        else:
            query = f"SELECT {columns} FROM {table.name} WHERE {column} <= {round}"
            if previous is not None:
                # rows of the previous round that its snapshot lacks: found by key in its file
                before = [e for e in entries if e["from"] == previous == e["to"]] or entries
                seen = f"SELECT {table.key} FROM read_parquet({_file_list(root, before)}, union_by_name=true)"
                late = f"{column} = {previous} AND {table.key} NOT IN ({seen})" if before else f"{column} = {previous}"
                query += f" AND ({column} > {previous} OR ({late}))"
        tables[table.name] = [*entries, _write(con, root, table.name, round, query, "part")]
        if column is not None and round % compact_every == 0:
            tables[table.name] = _compact(con, root, table.name, round, tables[table.name])
    atomic_write_json(root / MANIFEST, {"format": FORMAT, "round": round, "previous": previous, "tables": tables})
    _remove_unlisted(root, tables)
    return root


def _write(con: duckdb.DuckDBPyConnection, root: Path, name: str, round: int, query: str, kind: str) -> dict[str, Any]:
    folder = root / name / f"{PARTITION}={round:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    final, staging = folder / f"{kind}-{tag}.parquet", folder / f".{kind}-{tag}.tmp"
    try:
        con.execute(f"COPY ({query}) TO {_sql_path(staging)} (FORMAT parquet)")
        os.replace(staging, final)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return {"path": str(final.relative_to(root)), "from": round, "to": round}


def _compact(
    con: duckdb.DuckDBPyConnection, root: Path, name: str, round: int, entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`entries` with the per-round files before `round`'s merged into one block file."""
    singles = [e for e in entries if e["from"] == e["to"] < round]
    if len(singles) < 2:
        return entries
    first, last = min(e["from"] for e in singles), max(e["to"] for e in singles)
    query = f"SELECT * FROM read_parquet({_file_list(root, singles)}, union_by_name=true)"
    block = _write(con, root, name, first, query, "block") | {"to": last}
    kept = [e for e in entries if e not in singles]
    return sorted([*kept, block], key=lambda e: e["from"])


def _remove_unlisted(root: Path, tables: dict[str, list[dict[str, Any]]]) -> None:
    listed = {root / e["path"] for entries in tables.values() for e in entries}
    for name in tables:
        for file in (root / name).glob(f"{PARTITION}=*/*"):
            if file not in listed:
                file.unlink(missing_ok=True)
        for folder in (root / name).glob(f"{PARTITION}=*"):
            if not any(folder.iterdir()):
                folder.rmdir()


# --------------------------------------------------------------------------- reading


def snapshot_round(root: Path) -> int | None:
    """The newest round the snapshots under `root` hold (None: none yet), either format."""
    manifest = read_manifest(root)
    if manifest is not None:
        return int(manifest["round"])
    old = _old_snapshots(root)
    return int(_OLD_SNAPSHOT.match(old[-1].name).group(1)) if old else None  # type: ignore[union-attr]


def _old_snapshots(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("round_[0-9]*") if p.is_dir() and _OLD_SNAPSHOT.match(p.name))


def open_snapshots(root: Path, as_of: int | None = None) -> tuple[duckdb.DuckDBPyConnection, int]:
    """(an in-memory DuckDB connection with one view per table holding the rows of rounds up to
    `as_of` (default: the newest snapshot's round), that round). Tables written whole hold their
    newest rows whatever `as_of`. A run directory from before incremental snapshots
    (`round_NNNN/<table>.parquet`, every table whole each round) opens its round_NNNN folder."""
    manifest = read_manifest(root)
    if manifest is None:
        return _open_old(root, as_of)
    newest = int(manifest["round"])
    if as_of is None:
        as_of = newest
    if as_of > newest:
        raise StoreError(f"{root}: snapshots reach round {newest}, not {as_of}")
    con = duckdb.connect()
    for name, entries in manifest["tables"].items():
        table = schema.TABLE_BY_NAME.get(name)
        column = round_column(table) if table is not None else None
        if column:  # a file written after round as_of + 1 holds no row of round as_of or before, but the first
            first = min(e["from"] for e in entries)
            entries = [e for e in entries if e["from"] <= as_of + 1 or e["from"] == first]
        files = f"read_parquet({_file_list(root, entries)}, hive_partitioning=true, union_by_name=true)"
        where = f" WHERE {column} <= {as_of}" if column else ""
        con.execute(f"CREATE VIEW {name} AS SELECT * EXCLUDE ({PARTITION}) FROM {files}{where}")
    return con, as_of


def _open_old(root: Path, as_of: int | None) -> tuple[duckdb.DuckDBPyConnection, int]:
    """A run from before incremental snapshots: every round's folder holds every table whole."""
    old = {int(_OLD_SNAPSHOT.match(p.name).group(1)): p for p in _old_snapshots(root)}  # type: ignore[union-attr]
    if not old:
        raise StoreError(f"{root}: no snapshots yet (one is written at the end of each round)")
    round = max(old) if as_of is None else as_of
    if round not in old:
        raise StoreError(f"{root}: no snapshot of round {round} (this old-format run has rounds {min(old)}-{max(old)})")
    con = duckdb.connect()
    for file in sorted(old[round].glob("*.parquet")):
        con.execute(f"CREATE VIEW {file.stem} AS SELECT * FROM read_parquet({_sql_path(file)})")
    return con, round
