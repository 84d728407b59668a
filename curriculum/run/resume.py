"""What a run needs to continue after a crash: the state of the round in progress.

A round is a sequence of stages (`loop.STAGES`). When a stage ends, its records and a
`StageRecord` holding the round's `RoundState` are appended to the store in ONE
transaction, so the store either holds all of a stage or none of it. A killed run
resumes after the last stage that has a record: role state (policy adapter and
optimizer, Generator weights) is restored from the checkpoint folders that stage
points at, the driver's RNG states from the record, everything else from the store.

Every random draw of the loop and the roles is seeded from (experiment seed, round,
purpose), so a resumed round samples the same attempts and writes the same problems
as an uninterrupted one; the saved RNG states cover anything that uses a global RNG.
"""

from __future__ import annotations

import base64
import json
import random
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curriculum.errors import CurriculumError
from curriculum.evaluation import WORST_DROP
from curriculum.records import StageRecord, content_id

if TYPE_CHECKING:
    from curriculum.roles.api import Role
    from curriculum.store import Store

STATE_FORMAT = 1


def round_seed(seed: int, round: int, purpose: str) -> int:
    """A per-round, per-purpose seed: a re-run of the same round samples the same things."""
    return int(content_id(seed, round, purpose), 16) % (2**31)


class ResumeError(CurriculumError):
    """A run directory that cannot be resumed; the message says why."""


@dataclass
class RoundState:
    """Everything a round has computed that later stages need, as plain JSON values.

    Large things (the selected problems, their attempts) live in the store and are read
    back by id when a resumed round needs them; `problems` and `attempts` are those
    in-memory copies and are not saved.
    """

    round: int
    start_version: int  # policy version the round's attempts are sampled with (async: one before, if sampled ahead)
    policy_version: int  # current policy version (start_version + 1 once `learn` is done)
    generator_version: int = 0
    done: list[str] = field(default_factory=list)  # completed stages, in order
    problem_ids: list[str] = field(default_factory=list)  # selected problems, in selection order
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)  # problems added this round, per source
    evaluation: dict[str, Any] | None = None  # EvalResult.to_dict() once `evaluate` is done
    validation: dict[str, Any] | None = None  # the same on the validation set, where the world has one
    rng: dict[str, Any] | None = None  # the driver's RNG states at the end of the last stage
    # In-memory only (read back from the store on resume):
    problems: list[Any] | None = field(default=None, repr=False, compare=False, metadata={"transient": True})
    attempts: list[Any] | None = field(default=None, repr=False, compare=False, metadata={"transient": True})
    evaluation_result: Any = field(default=None, repr=False, compare=False, metadata={"transient": True})
    validation_result: Any = field(default=None, repr=False, compare=False, metadata={"transient": True})

    def to_json(self) -> str:
        saved = {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("transient")}
        return json.dumps({"format": STATE_FORMAT, **saved}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RoundState:
        data = json.loads(text)
        found = data.pop("format", None)
        if found != STATE_FORMAT:
            raise ResumeError(f"stage record format {found!r}; this code reads format {STATE_FORMAT}")
        return cls(**data)

    def record(self, stage: str) -> StageRecord:
        return StageRecord(round=self.round, stage=stage, state=self.to_json())


def last_state(records: list[StageRecord]) -> RoundState | None:
    """The state after the last completed stage (latest round, most stages done), or None."""
    if not records:
        return None
    states = [RoundState.from_json(r.state) for r in records]
    return max(states, key=lambda s: (s.round, len(s.done)))


# A round is finished when its last stage is stored: the seed set's (round 0), else the checkpoint.
ROUND_ENDS = ("seed", "checkpoint")


@dataclass
class FinishedRounds:
    """What the runner reads back of the rounds a run has finished (`read_finished`)."""

    rounds: set[int]
    states: dict[int, RoundState]  # brief (no selected ids, no RNG states), of some rounds only
    worst_drops: dict[int, float]  # each round's `retention/worst_drop`, where it has one


def read_finished(store: Role[Store], logged: set[int]) -> FinishedRounds:
    """The finished rounds: their numbers and worst drops, and the states the runner uses: round 0's
    (seed set, base evaluation), the newest (its evaluation is the final one if no round is left) and
    those MLflow has not logged. A long run has finished thousands of rounds, each state tens of
    kilobytes: reading them all took ~1 s at round 1,000 (bench/scale.py), this a few milliseconds."""
    from curriculum.store import Store

    rounds = set(store.call(Store.stage_rounds, ROUND_ENDS).result())
    newest = max(rounds, default=0)
    wanted = sorted(r for r in rounds if r in (0, newest) or r not in logged)
    records = store.call(Store.stage_records, stages=ROUND_ENDS, rounds=wanted, brief=True).result()
    states = {state.round: state for state in map(RoundState.from_json, (r.state for r in records))}
    return FinishedRounds(rounds, states, store.call(Store.metric_by_round, WORST_DROP).result())


# ----------------------------------------------------------------------------- RNG states


def capture_rng() -> dict[str, Any]:
    """Python's, NumPy's and torch's global RNG states as JSON values (only libraries already
    imported: capturing must not import torch into a driver that does not use it)."""
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {"python": [version, list(internal), gauss]}
    if "numpy" in sys.modules:
        import numpy as np

        legacy = np.random.get_state(legacy=True)
        assert isinstance(legacy, tuple)  # (kind, keys, pos, has_gauss, cached)
        kind, keys, pos, has_gauss, cached = legacy
        state["numpy"] = [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]
    if "torch" in sys.modules:
        import torch

        state["torch"] = base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii")
    return state


def restore_rng(state: dict[str, Any] | None) -> None:
    if not state:
        return
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        import numpy as np

        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "torch" in state:
        import torch

        raw = bytearray(base64.b64decode(state["torch"]))
        torch.set_rng_state(torch.frombuffer(raw, dtype=torch.uint8).clone())


# ----------------------------------------------------------------------------- checking a resumed run


# What may differ between two runs of the same seed: wall-clock times.
_VOLATILE_COLUMNS = {"created_at", "seconds"}
_TABLE_KEYS = {
    "problems": "id",
    "attempts": "id",
    "pairs": "id",
    "policies": "version",
    "rejected": "id",
    "rounds": "round",
}


@dataclass
class RunComparison:
    """How a (resumed) run's store differs from a reference run's, table by table."""

    compared: int = 0  # reference records looked for
    lost: int = 0  # reference records the run lacks
    duplicated: int = 0  # records stored twice, plus records the reference does not have
    differing: int = 0  # same key, different content
    details: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return self.lost == self.duplicated == self.differing == 0


def _volatile(table: str, column: str) -> bool:
    return column in _VOLATILE_COLUMNS or (table == "policies" and column == "metrics")


def _measured(metric: str) -> bool:
    """A metric of the machine, not of the run: wall-clock timings, rates over them, memory peaks."""
    return metric.endswith(("seconds", "per_second", "peak_gpu_memory_gib"))


def compare_stores(reference: str | Path, other: str | Path) -> RunComparison:
    """Compare every record of two stores by key, ignoring wall-clock fields (timings) and token arrays
    that `other` has since pruned."""
    import duckdb

    result = RunComparison()
    cons = [duckdb.connect(str(path), read_only=True) for path in (reference, other)]
    try:
        for table, key in _TABLE_KEYS.items():
            rows = []
            for con in cons:
                columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
                kept = [c for c in columns if not _volatile(table, c)]
                data = con.execute(f"SELECT {', '.join(kept)} FROM {table}").fetchall()
                rows.append([dict(zip(kept, _plain(row))) for row in data])
                for row in rows[-1]:
                    if table == "rounds":  # metrics minus timings and memory peaks
                        row["metrics"] = {k: v for k, v in row["metrics"].items() if not _measured(k)}
                    if table == "policies":  # the folder name, not where the run directory is
                        row["adapter_path"] = Path(row["adapter_path"]).name
            ref = {row[key]: row for row in rows[0]}
            got: dict[Any, dict] = {}
            for row in rows[1]:
                if row[key] in got:
                    result.duplicated += 1
                    result.details.append(f"{table} {row[key]}: stored twice")
                got[row[key]] = row
            result.compared += len(ref)
            for k, row in ref.items():
                if k not in got:
                    result.lost += 1
                    result.details.append(f"{table} {k}: lost")
                elif got[k] != row and not _pruned_copy(table, row, got[k]):
                    result.differing += 1
                    changed = sorted(c for c in row if row[c] != got[k].get(c))
                    result.details.append(f"{table} {k}: differs in {', '.join(changed)}")
            for k in got.keys() - ref.keys():
                result.duplicated += 1
                result.details.append(f"{table} {k}: not in the reference run")
    finally:
        for con in cons:
            con.close()
    return result


def _pruned_copy(table: str, row: dict, later: dict) -> bool:
    """`later` is `row` with its token arrays dropped by the end-of-round pruning (`store.keep_token_arrays`):
    the same record, not a changed one."""
    arrays = ("token_ids", "token_logprobs")
    if table != "attempts" or any(later.get(c) for c in arrays):
        return False
    return {c: v for c, v in row.items() if c not in arrays} == {c: v for c, v in later.items() if c not in arrays}


def _plain(row: tuple) -> list:
    """DuckDB MAP values come back as dicts already; lists stay lists; tuples become lists."""
    return [list(v) if isinstance(v, tuple) else v for v in row]
