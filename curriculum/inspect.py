"""Reading a run from its Parquet snapshots, so it works while the run is live.

DuckDB refuses to open a store file another process writes, so readers use the
latest `snapshots/round_NNNN/` folder, which the store exports atomically each round.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from curriculum.errors import CurriculumError

TABLES = ("problems", "attempts", "pairs", "policies", "rejected", "rounds")
_LEVEL_METRIC = re.compile(r"^eval/level_(\d+)/accuracy$")


class InspectError(CurriculumError):
    pass


def latest_snapshot(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InspectError(f"run directory not found: {run_dir}")
    snapshots = sorted((run_dir / "snapshots").glob("round_[0-9][0-9][0-9][0-9]"))
    if not snapshots:
        raise InspectError(f"{run_dir} has no snapshots yet (one is written at the end of each round)")
    return snapshots[-1]


def summarize(run_dir: str | Path) -> dict[str, Any]:
    """Per-round evaluation, problems by source and stage seconds, plus store counts."""
    import duckdb

    snapshot = latest_snapshot(run_dir)
    con = duckdb.connect()
    try:
        def table(name: str) -> str:
            return f"read_parquet('{snapshot / (name + '.parquet')}')"

        counts = {name: con.execute(f"SELECT count(*) FROM {table(name)}").fetchone()[0]
                  for name in ("problems", "attempts", "pairs", "rejected")}
        by_source: dict[int, dict[str, int]] = {}
        for round_, source, n in con.execute(
            f"SELECT round_created, source, count(*) FROM {table('problems')} GROUP BY ALL ORDER BY ALL"
        ).fetchall():
            by_source.setdefault(round_, {})[source] = n
        rounds = []
        for round_, version, metrics, seconds in con.execute(
            f"SELECT round, policy_version, metrics, seconds FROM {table('rounds')} ORDER BY round"
        ).fetchall():
            by_level = {m.group(1): value for key, value in metrics.items() if (m := _LEVEL_METRIC.match(key))}
            rounds.append({
                "round": round_,
                "policy_version": version,
                "eval": {"overall": metrics.get("eval/accuracy"),
                         "by_level": dict(sorted(by_level.items(), key=lambda kv: int(kv[0])))},
                "problems_by_source": by_source.get(round_, {}),
                "seconds": seconds,
                "metrics": metrics,
            })
    finally:
        con.close()
    return {"run_dir": str(run_dir), "snapshot": snapshot.name, "rounds": rounds, "store": counts}
