"""The DuckDB store of a run: schema and migrations (schema.py), idempotent appends, queries
and Parquet snapshots (store.py)."""

from curriculum.records import SolveRate
from curriculum.store.store import Store, StoreError, Weakness

__all__ = ["SolveRate", "Store", "StoreError", "Weakness"]
