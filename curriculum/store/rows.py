"""Records as rows: grouped by table, converted to Arrow in one pass, and the in-memory key filter
that lets `Store.append` skip a key already stored without a query per row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from curriculum.errors import CurriculumError
from curriculum.records import Record
from curriculum.store import schema


class StoreError(CurriculumError):
    """The store cannot do what was asked; the message says why and what to do."""


class _KeyFilter:
    """Sorted 64-bit hashes (DuckDB's ``hash()``) of the keys already in one table.

    ``might_contain`` is exact for "absent"; a hit may be a hash collision, so
    the store confirms hits against the table before dropping a row.

    The hashes are held as a few sorted runs merged like a binary counter (a run
    is merged into the one before it while that one is no bigger), so an add
    copies O(batch * log n) hashes amortized, not the whole array: inserting
    into one array cost ~0.4 us a row at 1M keys (bench/store.py).
    """

    def __init__(self, hashes: np.ndarray):
        self._runs: list[np.ndarray] = []
        if len(hashes):
            self._runs.append(np.sort(hashes.astype(np.uint64, copy=False)))

    def might_contain(self, hashes: np.ndarray) -> np.ndarray:
        """Per hash, whether it may be stored. Sorted ``hashes`` search ~2x faster (cache locality)."""
        found: np.ndarray = np.zeros(len(hashes), dtype=bool)
        for run in self._runs:
            positions = np.searchsorted(run, hashes).clip(max=len(run) - 1)
            found |= run[positions] == hashes
        return found

    def add(self, hashes: np.ndarray) -> None:
        if len(hashes) == 0:
            return
        run = hashes if _is_sorted(hashes) else np.sort(hashes)
        while self._runs and len(self._runs[-1]) <= len(run):
            # a stable sort of two sorted runs is timsort's linear merge (4x faster here than np.insert)
            run = np.sort(np.concatenate([self._runs.pop(), run]), kind="stable")
        self._runs.append(run)


def _is_sorted(values: np.ndarray) -> bool:
    return bool((values[1:] >= values[:-1]).all())


def _group_by_table(records: Sequence[Record]) -> list[tuple[schema.Table, list[Record]]]:
    """Records grouped by table, in schema order."""
    kinds = {type(record) for record in records}
    for kind in kinds - schema.TABLE_BY_RECORD.keys():
        index = next(i for i, record in enumerate(records) if type(record) is kind)
        raise StoreError(f"append: item {index} is a {kind.__name__}, not a store record")
    if len(kinds) == 1:  # the usual case: one Solver batch
        return [(schema.TABLE_BY_RECORD[kinds.pop()], list(records))]
    groups: dict[type, list[Record]] = {kind: [] for kind in kinds}
    for record in records:
        groups[type(record)].append(record)
    return [(table, groups[table.record]) for table in schema.TABLES if table.record in groups]


def _first_of_each(keys: list[Any]) -> np.ndarray:
    """Mask of the first occurrence of each key."""
    seen: set[Any] = set()
    first = []
    for key in keys:
        first.append(key not in seen)
        seen.add(key)
    return np.array(first, dtype=bool)


def _to_arrow(table: schema.Table, records: list[Record]) -> pa.Table:
    """One Arrow table from the records' attribute dicts. A key repeated in the batch
    keeps its first record: ``Store._insert_new_rows`` drops the rest, found through
    their hashes, so the common batch without repeats pays no Python set of keys.

    Converting the dicts as one struct array walks each record once in C++:
    0.8-0.9 us a row, against 1.0-1.2 for ``Table.from_pylist`` (which builds a
    Python list per column first) plus a set of the keys (measured with the
    bench/store.py data, 10k-record batches); per-column lists were slower still.
    """
    rows = [record.__dict__ for record in records]
    try:
        return pa.Table.from_struct_array(pa.array(rows, type=table.struct))
    except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
        first = _first_of_each([row.get(table.key) for row in rows])
        if not first.all():  # a repeat that would be dropped must not fail the call: drop it first
            return _to_arrow(table, [record for record, keep in zip(records, first) if keep])
        for field in table.arrow:  # name the column that does not fit
            try:
                pa.array([row[field.name] for row in rows], type=field.type)
            except (pa.ArrowException, OverflowError, TypeError, ValueError) as column_exc:
                raise StoreError(
                    f"append: cannot store {table.record.__name__}.{field.name} as {field.type}: "
                    f"{first_line(column_exc)}"
                ) from exc
        raise StoreError(f"append: cannot convert {table.record.__name__} records: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
