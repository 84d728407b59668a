"""The store's schema: one table per record type, and the versioned migrations that build it.

The schema is versioned: ``schema_version`` records each applied migration, and opening an
older file migrates it in one transaction (``store.py``). Add a migration by appending to
``MIGRATIONS``; never edit one that has shipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from curriculum.records import (
    Attempt,
    ModelCall,
    PolicyVersion,
    PreferencePair,
    Problem,
    Record,
    RejectedDraft,
    RoundStats,
    StageRecord,
)


@dataclass(frozen=True)
class Migration:
    """SQL that moves the schema from ``version - 1`` to ``version``."""

    version: int
    description: str
    statements: tuple[str, ...]


_SCHEMA_V1 = (
    """CREATE TABLE problems (
        id VARCHAR PRIMARY KEY,
        question VARCHAR NOT NULL,
        answer VARCHAR NOT NULL,
        solution VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        parent_id VARCHAR,
        family VARCHAR NOT NULL,
        level INTEGER,
        concepts VARCHAR[] NOT NULL,
        knobs MAP(VARCHAR, BIGINT) NOT NULL,
        round_created INTEGER NOT NULL,
        created_by VARCHAR NOT NULL,
        model_version INTEGER
    )""",
    # No PRIMARY KEY on attempts.id: see the module docstring (ingest speed).
    """CREATE TABLE attempts (
        id VARCHAR NOT NULL,
        problem_id VARCHAR NOT NULL,
        policy_version INTEGER NOT NULL,
        sample_index INTEGER NOT NULL CHECK (sample_index >= 0),
        round INTEGER NOT NULL,
        completion VARCHAR NOT NULL,
        extracted_answer VARCHAR,
        correct BOOLEAN NOT NULL,
        reward DOUBLE NOT NULL,
        num_tokens INTEGER NOT NULL CHECK (num_tokens >= 0),
        logprob DOUBLE,
        created_by VARCHAR NOT NULL
    )""",
    """CREATE TABLE pairs (
        id VARCHAR PRIMARY KEY,
        problem_id VARCHAR NOT NULL,
        policy_version INTEGER NOT NULL,
        round INTEGER NOT NULL,
        prompt VARCHAR NOT NULL,
        chosen VARCHAR NOT NULL,
        rejected VARCHAR NOT NULL,
        chosen_is_reference BOOLEAN NOT NULL
    )""",
    """CREATE TABLE policies (
        version INTEGER PRIMARY KEY,
        round INTEGER NOT NULL,
        parent_version INTEGER,
        adapter_path VARCHAR NOT NULL,
        algorithm VARCHAR NOT NULL,
        metrics MAP(VARCHAR, DOUBLE) NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE rejected (
        id VARCHAR PRIMARY KEY,
        source VARCHAR NOT NULL,
        parent_id VARCHAR,
        text VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        detail VARCHAR NOT NULL,
        round INTEGER NOT NULL,
        created_by VARCHAR NOT NULL
    )""",
    """CREATE TABLE rounds (
        round INTEGER PRIMARY KEY,
        policy_version INTEGER NOT NULL,
        metrics MAP(VARCHAR, DOUBLE) NOT NULL,
        seconds MAP(VARCHAR, DOUBLE) NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _SCHEMA_V1),
    Migration(
        2,
        "problems.answer_source: who labelled the reference answer",
        ("ALTER TABLE problems ADD COLUMN answer_source VARCHAR NOT NULL DEFAULT 'oracle'",),
    ),
    Migration(
        3,
        "stages: completed stages of each round, for resume",
        (
            """CREATE TABLE stages (
            id VARCHAR PRIMARY KEY,
            round INTEGER NOT NULL,
            stage VARCHAR NOT NULL,
            state VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL
        )""",
        ),
    ),
    # DuckDB cannot change a column's compression in place, so the table is rebuilt (one copy).
    Migration(
        4,
        "attempts.completion compressed with zstd: checkpoints a quarter faster, file a third smaller",
        (
            """CREATE TABLE attempts_v4 (
            id VARCHAR NOT NULL,
            problem_id VARCHAR NOT NULL,
            policy_version INTEGER NOT NULL,
            sample_index INTEGER NOT NULL CHECK (sample_index >= 0),
            round INTEGER NOT NULL,
            completion VARCHAR USING COMPRESSION zstd NOT NULL,
            extracted_answer VARCHAR,
            correct BOOLEAN NOT NULL,
            reward DOUBLE NOT NULL,
            num_tokens INTEGER NOT NULL CHECK (num_tokens >= 0),
            logprob DOUBLE,
            created_by VARCHAR NOT NULL
        )""",
            "INSERT INTO attempts_v4 BY NAME SELECT * FROM attempts",
            "DROP TABLE attempts",
            "ALTER TABLE attempts_v4 RENAME TO attempts",
        ),
    ),
    # DOUBLE, not FLOAT: a FLOAT read back through JSON (store._select) is not the float it was.
    Migration(
        5,
        "attempts.token_ids and token_logprobs: the sampled tokens and their sampling log-probs",
        (
            "ALTER TABLE attempts ADD COLUMN token_ids INTEGER[] DEFAULT []",
            "ALTER TABLE attempts ADD COLUMN token_logprobs DOUBLE[] DEFAULT []",
        ),
    ),
    Migration(
        6,
        "LLM Teacher: problems.vote_share of model-voted answers; calls: every audited model call",
        (
            "ALTER TABLE problems ADD COLUMN vote_share DOUBLE",
            """CREATE TABLE calls (
            id VARCHAR PRIMARY KEY,
            round INTEGER NOT NULL,
            source VARCHAR NOT NULL,
            node VARCHAR NOT NULL,
            parent_id VARCHAR,
            template VARCHAR NOT NULL,
            prompt_hash VARCHAR NOT NULL,
            prompt VARCHAR USING COMPRESSION zstd NOT NULL,
            output VARCHAR USING COMPRESSION zstd NOT NULL,
            parsed VARCHAR NOT NULL,
            error VARCHAR NOT NULL,
            drafts VARCHAR[] NOT NULL,
            latency_s DOUBLE NOT NULL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            endpoint VARCHAR NOT NULL,
            attempt INTEGER NOT NULL,
            sample_index INTEGER NOT NULL,
            created_at TIMESTAMP NOT NULL
        )""",
        ),
    ),
    # Kept by `Store.append` in the transaction that appends the attempts, so a solve rate (and a
    # round's selection, curricula/selection_sql.py) reads a row per problem and round, not every
    # attempt; an older store is backfilled from its attempts here.
    Migration(
        7,
        "problem_counts: attempts and correct ones per problem and round",
        (
            """CREATE TABLE problem_counts (
            problem_id VARCHAR NOT NULL,
            round INTEGER NOT NULL,
            attempts BIGINT NOT NULL,
            correct BIGINT NOT NULL,
            PRIMARY KEY (problem_id, round)
        )""",
            """INSERT INTO problem_counts
            SELECT problem_id, round, count(*), count_if(correct) FROM attempts GROUP BY problem_id, round""",
        ),
    ),
    # The all-time sums of `problem_counts`, kept with them: a round's selection reads one row a
    # problem instead of summing a row per problem and round (bench/scale.py: 1.8 s at round 1,000).
    Migration(
        8,
        "problem_totals: attempts and correct ones per problem, all rounds",
        (
            """CREATE TABLE problem_totals (
            problem_id VARCHAR PRIMARY KEY,
            attempts BIGINT NOT NULL,
            correct BIGINT NOT NULL
        )""",
            """INSERT INTO problem_totals
            SELECT problem_id, sum(attempts), sum(correct) FROM problem_counts GROUP BY problem_id""",
        ),
    ),
)


def supported_schema_version() -> int:
    """The newest schema version this code knows (the last migration)."""
    return MIGRATIONS[-1].version if MIGRATIONS else 0


VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp()
)"""


@dataclass(frozen=True)
class Table:
    """How one record type maps onto one table."""

    name: str
    record: type[Record]
    key: str
    arrow: pa.Schema  # column order = record field order

    @property
    def columns(self) -> list[str]:
        return self.arrow.names

    @property
    def struct(self) -> pa.StructType:
        return pa.struct(list(self.arrow))


_STR, _INT, _FLOAT, _BOOL = pa.string(), pa.int32(), pa.float64(), pa.bool_()
_TIME = pa.timestamp("us")
_FLOAT_MAP = pa.map_(pa.string(), pa.float64())

TABLES: tuple[Table, ...] = (
    Table(
        "problems",
        Problem,
        "id",
        pa.schema(
            [
                ("id", _STR),
                ("question", _STR),
                ("answer", _STR),
                ("solution", _STR),
                ("source", _STR),
                ("parent_id", _STR),
                ("family", _STR),
                ("level", _INT),
                ("concepts", pa.list_(_STR)),
                ("knobs", pa.map_(pa.string(), pa.int64())),
                ("round_created", _INT),
                ("created_by", _STR),
                ("model_version", _INT),
                ("answer_source", _STR),
                ("vote_share", _FLOAT),
            ]
        ),
    ),
    Table(
        "attempts",
        Attempt,
        "id",
        pa.schema(
            [
                ("id", _STR),
                ("problem_id", _STR),
                ("policy_version", _INT),
                ("sample_index", _INT),
                ("round", _INT),
                ("completion", _STR),
                ("extracted_answer", _STR),
                ("correct", _BOOL),
                ("reward", _FLOAT),
                ("num_tokens", _INT),
                ("logprob", _FLOAT),
                ("created_by", _STR),
                ("token_ids", pa.list_(_INT)),
                ("token_logprobs", pa.list_(_FLOAT)),
            ]
        ),
    ),
    Table(
        "pairs",
        PreferencePair,
        "id",
        pa.schema(
            [
                ("id", _STR),
                ("problem_id", _STR),
                ("policy_version", _INT),
                ("round", _INT),
                ("prompt", _STR),
                ("chosen", _STR),
                ("rejected", _STR),
                ("chosen_is_reference", _BOOL),
            ]
        ),
    ),
    Table(
        "policies",
        PolicyVersion,
        "version",
        pa.schema(
            [
                ("version", _INT),
                ("round", _INT),
                ("parent_version", _INT),
                ("adapter_path", _STR),
                ("algorithm", _STR),
                ("metrics", _FLOAT_MAP),
                ("created_at", _TIME),
            ]
        ),
    ),
    Table(
        "rejected",
        RejectedDraft,
        "id",
        pa.schema(
            [
                ("id", _STR),
                ("source", _STR),
                ("parent_id", _STR),
                ("text", _STR),
                ("reason", _STR),
                ("detail", _STR),
                ("round", _INT),
                ("created_by", _STR),
            ]
        ),
    ),
    Table(
        "rounds",
        RoundStats,
        "round",
        pa.schema(
            [
                ("round", _INT),
                ("policy_version", _INT),
                ("metrics", _FLOAT_MAP),
                ("seconds", _FLOAT_MAP),
                ("created_at", _TIME),
            ]
        ),
    ),
    Table(
        "stages",
        StageRecord,
        "id",
        pa.schema(
            [
                ("id", _STR),
                ("round", _INT),
                ("stage", _STR),
                ("state", _STR),
                ("created_at", _TIME),
            ]
        ),
    ),
    Table(
        "calls",
        ModelCall,
        "id",
        pa.schema(
            [
                ("id", _STR),
                ("round", _INT),
                ("source", _STR),
                ("node", _STR),
                ("parent_id", _STR),
                ("template", _STR),
                ("prompt_hash", _STR),
                ("prompt", _STR),
                ("output", _STR),
                ("parsed", _STR),
                ("error", _STR),
                ("drafts", pa.list_(_STR)),
                ("latency_s", _FLOAT),
                ("prompt_tokens", _INT),
                ("completion_tokens", _INT),
                ("endpoint", _STR),
                ("attempt", _INT),
                ("sample_index", _INT),
                ("created_at", _TIME),
            ]
        ),
    ),
)
TABLE_BY_RECORD = {table.record: table for table in TABLES}
TABLE_BY_NAME = {table.name: table for table in TABLES}

for _table in TABLES:  # the arrow layout must follow the record exactly
    assert _table.columns == list(_table.record.model_fields), _table.name
