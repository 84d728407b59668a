"""A stage's store writes, held back while it runs and committed once, with the stage's record.

The store then holds all of a stage or none of it: a run killed mid-stage resumes after the last
completed stage (run/resume.py). The stage's own reads see what it holds (`Store.read_with`, in a
transaction the store rolls back), so a stage reads its writes before they are committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Concatenate, ParamSpec, TypeVar

from curriculum.records import Record, StageRecord
from curriculum.roles.api import Role
from curriculum.store import Read, Store
from curriculum.store.queries import StoreQueries

R = TypeVar("R")
P = ParamSpec("P")


class StageTransaction:
    """What one stage has written so far (`held`); a `StoreReader` over the store and them."""

    def __init__(self, store: Role[Store]) -> None:
        self.store = store
        self.held: list[Record] = []

    def append(self, records: Iterable[Record]) -> int:
        """Hold `records` until the stage ends; returns how many."""
        added = list(records)
        self.held.extend(added)
        return len(added)

    def read(self, query: Callable[Concatenate[StoreQueries, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """A read of the store as if what the stage holds were stored."""
        if not self.held:
            return self.store.call(query, *args, **kwargs).result()
        return self.store.call(Store.read_with, self.held, Read.of(query, *args, **kwargs)).result()

    def export_snapshot(self, root: str, round: int, compact_every: int, token_arrays: bool) -> None:
        """Round `round`'s rows of the store with what the stage holds into the run's snapshots."""
        read = Read(Store.export_snapshot, (root, round, compact_every, token_arrays))
        self.store.call(Store.read_with, self.held, read).result()

    def commit(self, record: StageRecord) -> None:
        """Append everything held and the stage's record in one transaction."""
        self.store.call(Store.append, [*self.held, record]).result()
        self.held = []
