"""The store's reads: what the loop, the curriculum and the reports ask of a run's tables.

`StoreQueries` holds them apart from the storage (store.py: schema, appends, transactions,
snapshots); `Store` is both. A record comes back from one JSON column per row (`_select`), parsed
by pydantic in Rust. A curriculum's own SQL runs through `select_ids` (curricula/weakness.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

import duckdb

from curriculum.records import Attempt, Problem, SolveRate, StageRecord
from curriculum.store import schema

# Band edges are multiples of 1/k; allow for float rounding of correct/attempts.
_RATE_TOLERANCE = 1e-9

# A problem's lineage, walked up (`chain`: its parent first) and down (`tree`: children first) by
# `parent_id`; the paths guard against a parent cycle, which a correct run never writes. The store
# and the snapshot reports (report/lineage.py) select from them.
ANCESTORS = """WITH RECURSIVE chain(id, parent_id, depth, path) AS (
    SELECT id, parent_id, 0, [id] FROM problems WHERE id = ?
    UNION ALL
    SELECT p.id, p.parent_id, c.depth + 1, list_append(c.path, p.id)
    FROM problems p JOIN chain c ON p.id = c.parent_id
    WHERE NOT list_contains(c.path, p.id))"""
DESCENDANTS = """WITH RECURSIVE tree(id, depth, path) AS (
    SELECT id, 0, [id] FROM problems WHERE id = ?
    UNION ALL
    SELECT p.id, t.depth + 1, list_append(t.path, p.id)
    FROM problems p JOIN tree t ON p.parent_id = t.id
    WHERE NOT list_contains(t.path, p.id))"""


class StoreQueries:
    """The reads of a store: `con` is its connection, `path` its file, `_in_transaction` whether a
    transaction is open (`Store.read_with`)."""

    con: duckdb.DuckDBPyConnection
    path: Any
    _in_transaction: bool

    # -- solve rates and selection

    def solve_rates(
        self,
        policy_version: int | None = None,
        last_n_rounds: int | None = None,
        problem_ids: Iterable[str] | None = None,
    ) -> dict[str, SolveRate]:
        """Per problem id: attempts, correct and rate (correct / attempts).

        Over all attempts, or only those of one ``policy_version``, or only those
        of the last ``last_n_rounds`` rounds (rounds ``> max(attempts.round) - n``);
        filters combine. Problems with no attempt in scope are absent. Without a
        policy version, from the counts per problem and round, not every attempt.
        """
        where, params = self._attempt_scope(policy_version, last_n_rounds, problem_ids)
        rows = self.con.execute(
            f"""SELECT problem_id, {_counts(policy_version)} FROM {_counted(policy_version)} {where}
                GROUP BY problem_id ORDER BY problem_id""",
            params,
        ).fetchall()
        return {pid: SolveRate(n, c, c / n) for pid, n, c in rows}

    def problems_in_band(
        self,
        low: float,
        high: float,
        min_attempts: int = 1,
        policy_version: int | None = None,
        last_n_rounds: int | None = None,
    ) -> list[Problem]:
        """Problems whose solve rate lies in [low, high] with at least ``min_attempts``
        attempts in scope (scope as in :meth:`solve_rates`), ordered by id."""
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"problems_in_band: need 0 <= low <= high <= 1, got low={low}, high={high}")
        where, params = self._attempt_scope(policy_version, last_n_rounds, None)
        rows = self.con.execute(
            f"""WITH counted AS (
                    SELECT problem_id, {_counts(policy_version)} FROM {_counted(policy_version)} {where}
                    GROUP BY problem_id),
                rates AS (SELECT problem_id, n, c / n AS rate FROM counted)
                SELECT {_select("problems", "p")} FROM problems p JOIN rates r ON r.problem_id = p.id
                WHERE r.n >= ? AND r.rate BETWEEN ? AND ? ORDER BY p.id""",
            [*params, min_attempts, low - _RATE_TOLERANCE, high + _RATE_TOLERANCE],
        ).fetchall()
        return _records("problems", rows)

    def replay_successes(
        self, before_round: int, per_level: int, min_solve_rate: float, exclude: Iterable[str], salt: int
    ) -> list[tuple[Problem, Attempt]]:
        """Verified successes to replay (`learner.retention.replay_per_level`): up to `per_level`
        problems of each level, not in `exclude`, solved at least `min_solve_rate` of the time in the
        last round before `before_round` that attempted them, each with that round's first correct
        attempt (by policy version, then sample index). Which problems: by `tie_key(salt, id)`, so a
        level's replay changes from round to round; levels ascending."""
        rows = self.con.execute(
            f"""WITH latest AS (
                    SELECT problem_id, max(round) AS round FROM problem_counts WHERE round < $before
                    GROUP BY problem_id),
                solved AS (
                    SELECT c.problem_id, c.round FROM problem_counts c JOIN latest USING (problem_id, round)
                    WHERE c.correct >= c.attempts * $rate - {_RATE_TOLERANCE}
                      AND NOT list_contains($exclude, c.problem_id)),
                picked AS (
                    SELECT s.problem_id, s.round, p.level FROM solved s JOIN problems p ON p.id = s.problem_id
                    QUALIFY row_number() OVER (
                        PARTITION BY p.level ORDER BY sha256($salt || ':' || s.problem_id)) <= $per_level)  -- tie_key
                SELECT {_select("problems", "p")}, {_select("attempts", "a")}
                FROM picked k JOIN attempts a ON a.problem_id = k.problem_id AND a.round = k.round AND a.correct
                JOIN problems p ON p.id = k.problem_id
                QUALIFY row_number() OVER (PARTITION BY a.problem_id ORDER BY a.policy_version, a.sample_index) = 1
                ORDER BY k.level NULLS LAST, sha256($salt || ':' || k.problem_id)""",
            {
                "before": before_round,
                "rate": min_solve_rate,
                "exclude": list(exclude),
                "salt": str(salt),
                "per_level": per_level,
            },
        ).fetchall()
        problems = _records("problems", [(problem,) for problem, _ in rows])
        attempts = _records("attempts", [(attempt,) for _, attempt in rows])
        return list(zip(problems, attempts, strict=True))

    def _attempt_scope(
        self, policy_version: int | None, last_n_rounds: int | None, problem_ids: Iterable[str] | None
    ) -> tuple[str, list[Any]]:
        conditions: list[str] = []
        params: list[Any] = []
        if policy_version is not None:
            conditions.append("policy_version = ?")
            params.append(policy_version)
        if last_n_rounds is not None:
            if last_n_rounds < 1:
                raise ValueError(f"last_n_rounds must be >= 1, got {last_n_rounds}")
            conditions.append(f"round > (SELECT max(round) FROM {_counted(policy_version)}) - ?")
            params.append(last_n_rounds)
        if problem_ids is not None:
            conditions.append("problem_id IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(problem_ids))
        return ("WHERE " + " AND ".join(conditions) if conditions else ""), params

    def accuracy_history(self, problem_ids: Iterable[str] | None = None) -> dict[str, dict[int, float]]:
        """Per problem id: {round: accuracy of that round's attempts}, rounds ascending."""
        where, params = self._attempt_scope(None, None, problem_ids)
        rows = self.con.execute(
            f"""SELECT problem_id, round, avg(correct::DOUBLE) FROM attempts {where}
                GROUP BY problem_id, round ORDER BY problem_id, round""",
            params,
        ).fetchall()
        history: dict[str, dict[int, float]] = {}
        for pid, round_, accuracy in rows:
            history.setdefault(pid, {})[round_] = accuracy
        return history

    # -- lineage

    def ancestors(self, problem_id: str) -> list[Problem]:
        """The parent chain of a problem: its parent first, the root (a seed) last."""
        self._require_problem(problem_id)
        rows = self.con.execute(
            f"""{ANCESTORS}
                SELECT {_select("problems", "p")} FROM chain c JOIN problems p ON p.id = c.id
                WHERE c.depth > 0 ORDER BY c.depth""",
            [problem_id],
        ).fetchall()
        return _records("problems", rows)

    def descendants(self, problem_id: str) -> list[Problem]:
        """Every problem derived from this one, transitively: children first, then by id."""
        self._require_problem(problem_id)
        rows = self.con.execute(
            f"""{DESCENDANTS}
                SELECT {_select("problems", "p")} FROM tree t JOIN problems p ON p.id = t.id
                WHERE t.depth > 0 ORDER BY t.depth, p.id""",
            [problem_id],
        ).fetchall()
        return _records("problems", rows)

    def _require_problem(self, problem_id: str) -> None:
        if self.con.execute("SELECT count(*) FROM problems WHERE id = ?", [problem_id]).fetchone()[0] == 0:
            raise KeyError(f"problem {problem_id!r} is not in the store {self.path}")

    # -- plain reads

    def select_ids(self, sql: str, params: Sequence[Any] = ()) -> list[str]:
        """The first column of a read-only query a curriculum writes (e.g. SwS's weakness rule,
        curricula/weakness.py), as ids; run inside a transaction that is rolled back."""
        in_transaction = self._in_transaction
        if not in_transaction:
            self.con.begin()
        try:
            return [str(row[0]) for row in self.con.execute(sql, list(params)).fetchall()]
        finally:
            if not in_transaction:
                self.con.rollback()

    def problems_by_query(self, sql: str, params: Mapping[str, Any] | Sequence[Any] = ()) -> list[Problem]:
        """The problems a curriculum's read-only query picks, in its order: its first column is each
        row as `problem_json` writes it (e.g. a round's selection, curricula/selection_sql.py); run
        inside a transaction that is rolled back."""
        in_transaction = self._in_transaction
        if not in_transaction:
            self.con.begin()
        try:
            rows = self.con.execute(sql, params if isinstance(params, Mapping) else list(params)).fetchall()
        finally:
            if not in_transaction:
                self.con.rollback()
        return _records("problems", rows)

    def get_problems(self, ids: Iterable[str]) -> list[Problem]:
        """The stored problems among ``ids``, in the order asked; unknown ids are skipped."""
        ids = list(ids)
        rows = self.con.execute(
            f"SELECT {_select('problems')} FROM problems WHERE id IN (SELECT unnest(?::VARCHAR[]))", [ids]
        ).fetchall()
        by_id = {problem.id: problem for problem in _records("problems", rows)}
        return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]

    def problems(
        self, source: str | None = None, round: int | None = None, since_round: int | None = None
    ) -> list[Problem]:
        """Problems, optionally of one source and/or created in one round and/or in a round from
        ``since_round`` on; by round, then id."""
        conditions: list[str] = []
        params: list[Any] = []
        if source is not None:
            conditions.append("source = ?")
            params.append(source)
        if round is not None:
            conditions.append("round_created = ?")
            params.append(round)
        if since_round is not None:
            conditions.append("round_created >= ?")
            params.append(since_round)
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        rows = self.con.execute(
            f"SELECT {_select('problems')} FROM problems {where} ORDER BY round_created, id", params
        ).fetchall()
        return _records("problems", rows)

    def questions(self, from_round: int, before_round: int) -> list[tuple[int, str]]:
        """(round, question) of the problems created in rounds [from_round, before_round), by round,
        then id: what the health metrics' near-duplicate index is rebuilt from (curricula/health.py)."""
        return [
            (int(round_), str(question))
            for round_, question in self.con.execute(
                """SELECT round_created, question FROM problems WHERE round_created >= ? AND round_created < ?
                   ORDER BY round_created, id""",
                [from_round, before_round],
            ).fetchall()
        ]

    def stage_rounds(self, stages: Sequence[str]) -> list[int]:
        """The rounds with a completed stage named in `stages`, ascending (their states are not read)."""
        query = "SELECT DISTINCT round FROM stages WHERE list_contains(?, stage) ORDER BY round"
        return [int(round_) for (round_,) in self.con.execute(query, [list(stages)]).fetchall()]

    def metric_by_round(self, name: str) -> dict[int, float]:
        """Metric ``name`` of every round that recorded it (the rounds table), by round."""
        rows = self.con.execute(
            "SELECT round, metrics[?] FROM rounds WHERE map_contains(metrics, ?) ORDER BY round", [name, name]
        ).fetchall()
        return {int(round_): float(value) for round_, value in rows}

    def round_metric(self, name: str, before_round: int, limit: int) -> list[float]:
        """The values of metric ``name`` in the last ``limit`` rounds before ``before_round`` that
        recorded it, newest first."""
        rows = self.con.execute(
            """SELECT metrics[?] FROM rounds WHERE round < ? AND map_contains(metrics, ?)
               ORDER BY round DESC LIMIT ?""",
            [name, before_round, name, limit],
        ).fetchall()
        return [float(value) for (value,) in rows]

    def problem_ids(self) -> list[str]:
        return [row[0] for row in self.con.execute("SELECT id FROM problems ORDER BY id").fetchall()]

    def problem_counts_by_source(self, round: int | None = None) -> dict[str, int]:
        """Problems per source, all or only those created in ``round``."""
        where, params = ("WHERE round_created = ?", [round]) if round is not None else ("", [])
        rows = self.con.execute(f"SELECT source, count(*) FROM problems {where} GROUP BY source", params).fetchall()
        return dict(sorted(rows))

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {
            table.name: self.con.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0] for table in schema.TABLES
        }

    def round_attempts(self, round: int, problem_ids: Iterable[str] | None = None) -> list[Attempt]:
        """The attempts made in one round (optionally at some problems), by problem id, then
        policy version and sample index: what a resumed round reads back instead of re-sampling."""
        where, params = "WHERE round = ?", list[Any]([round])
        if problem_ids is not None:
            where += " AND problem_id IN (SELECT unnest(?::VARCHAR[]))"
            params.append(list(problem_ids))
        rows = self.con.execute(
            f"SELECT {_select('attempts')} FROM attempts {where} ORDER BY problem_id, policy_version, sample_index",
            params,
        ).fetchall()
        return _records("attempts", rows)

    def stage_records(
        self,
        stages: Sequence[str] | None = None,
        last_round: bool = False,
        brief: bool = False,
        rounds: Sequence[int] | None = None,
    ) -> list[StageRecord]:
        """Completed stages (see `loop.RoundState`), in the order they completed: every round's, or only
        those named in `stages`, of `rounds`, or only the newest round's (`last_round`: what a resume
        continues from). A long run holds thousands, each with its round's selected ids and RNG states:
        read what is needed, and with `brief` their states without those two (the bulk of a state)."""
        # DuckDB pushes `round = <value>` into the scan (the large state column is read only where it
        # holds), not a filter on a list parameter, which read every row's state (~0.5 s at round 1,000,
        # bench/scale.py): those select ids first, and the scan joins on them.
        where = ["round = (SELECT max(round) FROM stages)"] if last_round else []
        listed: list[str] = []
        params: list[Any] = []
        if stages is not None:
            listed.append("list_contains(?, stage)")
            params.append(list(stages))
        if rounds is not None:
            listed.append("list_contains(?, round)")
            params.append(list(rounds))
        if listed:
            where.append(f"id IN (SELECT id FROM stages WHERE {' AND '.join(listed)})")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        # A JSON merge patch: null removes a key, so RoundState reads its defaults.
        brief_state = """json_merge_patch(state, '{"problem_ids": null, "rng": null}')::VARCHAR"""
        columns = _select("stages", computed={"state": brief_state} if brief else None)
        order = "ORDER BY round, created_at, id"
        rows = self.con.execute(f"SELECT {columns} FROM stages {clause} {order}", params).fetchall()
        return _records("stages", rows)


def _counted(policy_version: int | None) -> str:
    """Where attempts are counted: per problem and round (`problem_counts`, kept by `Store.append`),
    unless a policy version is asked for, which only the attempts themselves record."""
    return "problem_counts" if policy_version is None else "attempts"


def _counts(policy_version: int | None) -> str:
    """A problem's attempts (n) and correct ones (c), aggregated over `_counted`'s rows."""
    if policy_version is None:
        return "sum(attempts)::BIGINT AS n, sum(correct)::BIGINT AS c"
    return "count(*) AS n, count_if(correct) AS c"


def _select(table_name: str, alias: str | None = None, computed: dict[str, str] | None = None) -> str:
    """SQL for one column holding each row as a JSON object of the record's fields.

    ``model_validate_json`` parses it in Rust: half the time of building a dict
    per row in Python and validating that (measured on the band query). `computed`: an SQL
    expression in place of a column's value.
    """
    prefix = f"{alias}." if alias else ""
    computed = computed or {}
    fields = ", ".join(
        f"{column} := {computed.get(column, prefix + column)}" for column in schema.TABLE_BY_NAME[table_name].columns
    )
    return f"to_json(struct_pack({fields}))"


def problem_json(alias: str) -> str:
    """SQL for one column holding the problem row ``alias`` as the JSON `problems_by_query` reads."""
    return _select("problems", alias)


def _records(table_name: str, rows: Iterable[Sequence[Any]]) -> list[Any]:
    """Records from rows whose first column is :func:`_select`'s JSON."""
    validate_json = schema.TABLE_BY_NAME[table_name].record.model_validate_json
    return [validate_json(row[0]) for row in rows]


R = TypeVar("R")
P = ParamSpec("P")


@dataclass(frozen=True)
class Read(Generic[R]):
    """One read of the store with its arguments, as a value (picklable: it travels to the store's
    actor): `Read.of(StoreQueries.problems, source="teacher")`, run by `Store.read_with`."""

    query: Callable[..., R]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, query: Callable[Concatenate[StoreQueries, P], R], /, *args: P.args, **kwargs: P.kwargs) -> Read[R]:
        return cls(query, args, kwargs)

    def __call__(self, store: StoreQueries) -> R:
        return self.query(store, *self.args, **self.kwargs)


class StoreReader(Protocol):
    """What a curriculum reads of the store: one query of `StoreQueries` with its arguments (a
    stage's reader also sees the stage's writes before they are committed, run/stages.py)."""

    def read(self, query: Callable[Concatenate[StoreQueries, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...


class LocalReader:
    """A `StoreReader` on a store object in this process (tests, reports)."""

    def __init__(self, store: StoreQueries) -> None:
        self.store = store

    def read(self, query: Callable[Concatenate[StoreQueries, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return query(self.store, *args, **kwargs)


# The reads `Store.read_with` runs: every public method of StoreQueries.
READS = frozenset(value for name, value in vars(StoreQueries).items() if callable(value) and not name.startswith("_"))
