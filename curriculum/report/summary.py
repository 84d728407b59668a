"""Reading a run from its Parquet snapshots, so it works while the run is live.

DuckDB refuses to open a store file another process writes, so readers use the Parquet
snapshots under `snapshots/`, to which the store adds each round's rows (store/snapshots.py).
`open_snapshot` gives an in-memory DuckDB connection with one view per table, as of a round.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from curriculum.config import Config, ConfigError, load_config
from curriculum.errors import CurriculumError
from curriculum.rundir import RunLayout
from curriculum.store import snapshots
from curriculum.store.rows import StoreError

TABLES = ("problems", "attempts", "pairs", "policies", "rejected", "rounds")
_LEVEL_METRIC = re.compile(r"^eval/level_(\d+)/accuracy$")
_VALIDATION_LEVEL_METRIC = re.compile(r"^validation/level_(\d+)/accuracy$")
_DROP_PREFIX = "retention/drop/"
WEAK_CONCEPTS = 10  # concepts listed by summarize()
DRAFT_SOURCES = ("teacher", "generator")  # always listed in the acceptance table, even with no drafts
# (`calls`, the LLM workflows' audit, is read when a snapshot has it: older runs' snapshots lack it)


class InspectError(CurriculumError):
    pass


def open_snapshot(run_dir: str | Path, as_of: int | None = None) -> tuple[Any, str]:
    """(an in-memory DuckDB connection with a view per table of the run as of round `as_of`, default
    the newest snapshot's round; a name for it, "round_NNNN").

    The views read the Parquet files when queried (store/snapshots.py); a view opened before the
    run's next compaction (every store.snapshot_compact_every rounds) must be opened again after it.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InspectError(f"run directory not found: {run_dir}")
    root = RunLayout(run_dir).snapshots
    if snapshots.snapshot_round(root) is None:
        raise InspectError(f"{run_dir} has no snapshots yet (one is written at the end of each round)")
    try:
        con, round = snapshots.open_snapshots(root, as_of)
    except StoreError as exc:
        raise InspectError(str(exc)) from None
    tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    missing = [name for name in TABLES if name not in tables]
    if missing:
        con.close()
        raise InspectError(f"{root} lacks {', '.join(missing)}: not a complete store snapshot")
    return con, f"round_{round:04d}"


def run_config(run_dir: str | Path) -> Any:
    """The run's resolved config; defaults when config.yaml is missing or from an older version."""

    try:
        return load_config(RunLayout(Path(run_dir)).config)
    except ConfigError:
        return Config()


def _by_level(metrics: dict[str, float], pattern: re.Pattern[str]) -> dict[str, float]:
    found = {m.group(1): value for key, value in metrics.items() if (m := pattern.match(key))}
    return dict(sorted(found.items(), key=lambda kv: int(kv[0])))


def summarize(run_dir: str | Path, as_of: int | None = None) -> dict[str, Any]:
    """Per-round evaluation, problems by source and stage seconds, plus store counts, the
    current learning band, the weakest concepts and the Teacher/Generator acceptance; of the run
    as of round `as_of` (default: its newest snapshot)."""
    config = run_config(run_dir)
    con, snapshot = open_snapshot(run_dir, as_of)
    try:
        counts = {
            name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            for name in ("problems", "attempts", "pairs", "rejected", "calls")
            if has_table(con, name)
        }
        by_source: dict[int, dict[str, int]] = {}
        for round_, source, n in con.execute(
            "SELECT round_created, source, count(*) FROM problems GROUP BY ALL ORDER BY ALL"
        ).fetchall():
            by_source.setdefault(round_, {})[source] = n
        attempted: dict[int, dict[str, int]] = {}
        for round_, level, n in con.execute(
            """SELECT a.round, p.level, count(DISTINCT a.problem_id) FROM attempts a
               JOIN problems p ON p.id = a.problem_id GROUP BY ALL ORDER BY ALL"""
        ).fetchall():
            attempted.setdefault(round_, {})[str(level)] = n
        rounds = []
        worst_so_far = None
        for round_, version, metrics, seconds in con.execute(
            "SELECT round, policy_version, metrics, seconds FROM rounds ORDER BY round"
        ).fetchall():
            by_level = _by_level(metrics, _LEVEL_METRIC)
            if "retention/worst_drop" in metrics:
                worst_so_far = max(metrics["retention/worst_drop"], worst_so_far or -math.inf)
            rounds.append(
                {
                    "round": round_,
                    "policy_version": version,
                    "eval": {"overall": metrics.get("eval/accuracy"), "by_level": by_level},
                    # the validation set's, where the world has one (None: it has not)
                    "validation": {
                        "overall": metrics["validation/accuracy"],
                        "by_level": _by_level(metrics, _VALIDATION_LEVEL_METRIC),
                        "worst_drop": metrics.get("validation/worst_drop"),
                    }
                    if "validation/accuracy" in metrics
                    else None,
                    "problems_by_source": by_source.get(round_, {}),
                    "attempted_by_level": attempted.get(round_, {}),
                    "mean_level_attempted": _mean_level(attempted.get(round_, {})),
                    "seconds": seconds,
                    "metrics": metrics,
                    # points lost since the base per level (or benchmark), this round's worst and the run's so far
                    "drop_from_base": {
                        key.removeprefix(_DROP_PREFIX): value
                        for key, value in metrics.items()
                        if key.startswith(_DROP_PREFIX)
                    },
                    "worst_drop": metrics.get("retention/worst_drop"),
                    "worst_drop_so_far": worst_so_far,
                }
            )
        band = learning_band(con, config.selection.band_low, config.selection.band_high, config.selection.last_n_rounds)
        weak = weak_concepts(con, config.selection.last_n_rounds, min_attempts=config.solver.attempts)
        accept = acceptance(con)
        calls = model_calls(con) if has_table(con, "calls") else []
        labels = label_quality(con, rounds)
        health = health_by_round(rounds)
    finally:
        con.close()
    return {
        "run_dir": str(run_dir),
        "snapshot": snapshot,
        "rounds": rounds,
        "store": counts,
        "band": band,
        "weak_concepts": weak,
        "acceptance": accept,
        "calls": calls,
        "label_quality": labels,
        "health": health,
    }


def health_by_round(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per round that recorded them: the `health/...` metrics of its new problems (curricula/health.py),
    without the prefix."""
    return [
        {
            "round": r["round"],
            **{k.removeprefix("health/"): v for k, v in r["metrics"].items() if k.startswith("health/")},
        }
        for r in rounds
        if any(k.startswith("health/") for k in r["metrics"])
    ]


def has_table(con: Any, name: str) -> bool:
    """Whether the snapshot has `name` (snapshots of older runs lack the newer tables)."""
    return bool(con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [name]).fetchone()[0])


def model_calls(con: Any) -> list[dict[str, Any]]:
    """Per source (teacher, synthesis) and workflow step: the audited model calls, how many failed
    and why, their mean latency and tokens (the LLM Teacher's `calls` table)."""
    rows = con.execute(
        """SELECT source, node, count(*), count_if(error <> ''), avg(latency_s),
                  sum(coalesce(prompt_tokens, 0)), sum(coalesce(completion_tokens, 0)),
                  list(split_part(error, ':', 1)) FILTER (WHERE error <> '')
           FROM calls GROUP BY source, node ORDER BY source, min(created_at), node"""
    ).fetchall()
    out = []
    for source, node, n, failed, latency, prompt_tokens, completion_tokens, errors in rows:
        reasons: dict[str, int] = {}
        for reason in errors or []:
            reasons[reason] = reasons.get(reason, 0) + 1
        out.append(
            {
                "source": source,
                "node": node,
                "calls": n,
                "errors": failed,
                "error_reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
                "latency_s_mean": latency,
                "prompt_tokens": int(prompt_tokens),
                "completion_tokens": int(completion_tokens),
            }
        )
    return out


def label_quality(con: Any, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Model-voted reference answers: per round the count, how many the world's oracle could check,
    the agreement with it, the mean vote share and (a world without an oracle) the labeller's
    agreement with dataset reference answers (from the round metrics `labels/...`); overall the
    vote shares of the stored model-labelled problems."""
    per_round = []
    for r in rounds:
        m = r["metrics"]
        if "labels/model_labelled" in m:
            per_round.append(
                {
                    "round": r["round"],
                    "model_labelled": int(m["labels/model_labelled"]),
                    "checked": int(m.get("labels/checked", 0)),
                    "agreement": m.get("labels/agreement"),
                    "vote_share_mean": m.get("labels/vote_share_mean"),
                    # without an oracle: the labeller's votes on dataset problems against their answers
                    "reference_checked": int(m.get("labels/reference_checked", 0)),
                    "reference_agreement": m.get("labels/reference_agreement"),
                }
            )
    shares = (
        dict(
            con.execute(
                """SELECT round(vote_share, 3), count(*) FROM problems
           WHERE answer_source = 'model' AND vote_share IS NOT NULL GROUP BY ALL ORDER BY ALL"""
            ).fetchall()
        )
        if "vote_share" in [c[0] for c in con.execute("DESCRIBE problems").fetchall()]
        else {}
    )
    return {"rounds": per_round, "vote_shares": {f"{k:g}": v for k, v in shares.items()}}


def _mean_level(counts: dict[str, int]) -> float | None:
    known = {int(level): n for level, n in counts.items() if level != "None"}
    total = sum(known.values())
    return sum(level * n for level, n in known.items()) / total if total else None


def _recent_rates_sql(last_n_rounds: int) -> str:
    """Each problem's solve rate as the loop's selection estimates it: over the attempts of
    the last n rounds where it has some there, else over all its attempts."""
    return f"""
        WITH recent AS (
            SELECT problem_id, count(*) AS n, count_if(correct) AS c FROM attempts
            WHERE round > (SELECT max(round) FROM attempts) - {int(last_n_rounds)} GROUP BY problem_id),
        overall AS (
            SELECT problem_id, count(*) AS n, count_if(correct) AS c FROM attempts GROUP BY problem_id)
        SELECT o.problem_id, coalesce(r.n, o.n) AS n, coalesce(r.c, o.c) AS c,
               coalesce(r.c, o.c) / coalesce(r.n, o.n) AS rate
        FROM overall o LEFT JOIN recent r USING (problem_id)"""


def learning_band(con: Any, low: float, high: float, last_n_rounds: int) -> dict[str, Any]:
    """How the problems sit against the band [low, high] now: counts below, inside, above,
    never attempted, and the levels of the problems inside (where the curriculum works)."""
    eps = 1e-9  # estimates are c/k: allow for float rounding at the edges
    rows = con.execute(
        f"""WITH rates AS ({_recent_rates_sql(last_n_rounds)})
            SELECT CASE WHEN r.rate IS NULL THEN 'unattempted'
                        WHEN r.rate < {low - eps} THEN 'below'
                        WHEN r.rate > {high + eps} THEN 'above' ELSE 'in_band' END AS place,
                   p.level, count(*)
            FROM problems p LEFT JOIN rates r ON r.problem_id = p.id GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    counts = {"below": 0, "in_band": 0, "above": 0, "unattempted": 0}
    in_band_by_level: dict[str, int] = {}
    for place, level, n in rows:
        counts[place] += n
        if place == "in_band":
            in_band_by_level[str(level)] = in_band_by_level.get(str(level), 0) + n
    return {
        "low": low,
        "high": high,
        "last_n_rounds": last_n_rounds,
        "counts": counts,
        "in_band_by_level": in_band_by_level,
    }


def weak_concepts(
    con: Any, last_n_rounds: int, min_attempts: int = 1, limit: int = WEAK_CONCEPTS
) -> list[dict[str, Any]]:
    """Concepts by failure rate over the attempts of the last n rounds (SwS's failure ratio),
    worst first; a concept needs `min_attempts` attempts to be ranked."""
    rows = con.execute(
        f"""WITH tagged AS (SELECT id, unnest(concepts) AS concept FROM problems)
            SELECT t.concept, count(DISTINCT a.problem_id) AS problems, count(*) AS attempts,
                   count_if(NOT a.correct) AS failures
            FROM attempts a JOIN tagged t ON t.id = a.problem_id
            WHERE a.round > (SELECT max(round) FROM attempts) - {int(last_n_rounds)}
            GROUP BY t.concept HAVING count(*) >= ?
            ORDER BY failures / attempts DESC, attempts DESC, concept LIMIT ?""",
        [min_attempts, limit],
    ).fetchall()
    return [{"concept": c, "problems": p, "attempts": n, "failures": f, "failure_rate": f / n} for c, p, n, f in rows]


def acceptance(con: Any) -> dict[str, dict[str, Any]]:
    """Per draft source (teacher, generator, ...): accepted problems, rejected drafts, the
    acceptance rate and the rejection reasons with their counts."""
    accepted = dict(con.execute("SELECT source, count(*) FROM problems GROUP BY source").fetchall())
    reasons: dict[str, dict[str, int]] = {}
    for source, reason, n in con.execute(
        "SELECT source, reason, count(*) FROM rejected GROUP BY ALL ORDER BY source, count(*) DESC, reason"
    ).fetchall():
        reasons.setdefault(source, {})[reason] = n
    out = {}
    made = sorted(s for s in accepted if s not in ("seed", "dataset"))  # seeds and datasets are not drafts
    for source in dict.fromkeys([*DRAFT_SOURCES, *made, *sorted(reasons)]):
        ok, rejected = accepted.get(source, 0), sum(reasons.get(source, {}).values())
        out[source] = {
            "accepted": ok,
            "rejected": rejected,
            "rate": ok / (ok + rejected) if ok + rejected else None,
            "reasons": reasons.get(source, {}),
        }
    return out
