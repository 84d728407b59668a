"""The DuckDB store of a run: schema and migrations (schema.py), idempotent appends, transactions
and Parquet snapshots (store.py), and its reads (queries.py)."""

from curriculum.records import SolveRate
from curriculum.store.queries import Read
from curriculum.store.store import Store, StoreError

__all__ = ["Read", "SolveRate", "Store", "StoreError"]
