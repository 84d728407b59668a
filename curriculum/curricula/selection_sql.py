"""A round's selection as one query the store answers: `select_round_problems`'s pools, orderings and
shares in SQL, over the per-problem counts (`problem_totals`, `problem_counts`), returning only the chosen problems.

selection.py stays the reference (and selects the seed set, whose candidates are not stored yet);
tests/unit/curricula/test_selection_sql.py checks that both pick the same problems in the same order.
The rates are those the loop used before this query: all-time, overlaid with those of the last
``last_n_rounds`` rounds where a problem was attempted in them (`StoreQueries.solve_rates`).
"""

from __future__ import annotations

from curriculum.config.selection import SelectionConfig
from curriculum.curricula.selection import quotas
from curriculum.records import Problem
from curriculum.store.queries import StoreQueries, StoreReader, problem_json

# Every float bound is computed in Python ($low_edge = low - 1e-9, ...) exactly as selection.py
# computes it, so the comparisons agree to the last bit; c / n is IEEE division in both.
SELECT_ROUND = f"""
WITH recent AS (  -- the last rounds' counts: a few rounds' rows of problem_counts
    SELECT problem_id, sum(attempts) AS n_last, sum(correct) AS c_last FROM problem_counts
    WHERE round > (SELECT max(round) FROM problem_counts) - $last_n_rounds GROUP BY problem_id),
counted AS (  -- all-time counts: one row a problem (problem_totals), not a sum over every round
    SELECT t.problem_id, t.attempts AS n_all, t.correct AS c_all, r.n_last, r.c_last
    FROM problem_totals t LEFT JOIN recent r ON r.problem_id = t.problem_id),
rates AS (  -- the last rounds' estimate where there is one, else the all-time one
    SELECT problem_id, coalesce(n_last, n_all) AS n,
           coalesce(c_last, c_all)::DOUBLE / coalesce(n_last, n_all)::DOUBLE AS rate
    FROM counted),
candidates AS (  -- selection.trusted, then each problem's pool and the first key of its pool's order
    SELECT *, CASE pool WHEN 'fresh' THEN -round_created
                        WHEN 'failed' THEN $low - rate
                        WHEN 'band' THEN abs(rate - 0.5)
                        ELSE 0 END AS first_key  -- solved by level: its turn, below
    FROM (SELECT p.id, p.level, p.round_created, r.rate,
                 CASE WHEN r.rate IS NULL THEN 'fresh'
                      WHEN r.n >= $min_attempts AND r.rate BETWEEN $low_edge AND $high_edge THEN 'band'
                      WHEN r.rate < $low THEN 'failed'
                      ELSE 'solved' END AS pool
          FROM problems p LEFT JOIN rates r ON r.problem_id = p.id
          WHERE p.vote_share IS NULL OR p.vote_share >= $min_vote_share)),
sizes AS (
    SELECT count(*) FILTER (WHERE pool = 'fresh') AS fresh_size, count(*) FILTER (WHERE pool = 'failed') AS failed_size,
           count(*) FILTER (WHERE pool = 'solved') AS solved_size, count(*) FILTER (WHERE pool = 'band') AS band_size
    FROM candidates),
quota_taken AS (  -- each pool up to its quota...
    SELECT least($fresh_quota, fresh_size) AS fresh, least($failed_quota, failed_size) AS failed,
           least($solved_quota, solved_size) AS solved, least($band_quota, band_size) AS band, *
    FROM sizes),
band_more AS (  -- ...then the slots left to the band, then fresh, then solved; never to failed
    SELECT * REPLACE (band + least(greatest(0, $n - fresh - failed - solved - band), band_size - band) AS band)
    FROM quota_taken),
fresh_more AS (
    SELECT * REPLACE (fresh + least(greatest(0, $n - fresh - failed - solved - band), fresh_size - fresh) AS fresh)
    FROM band_more),
taken AS (
    SELECT * REPLACE (solved + least(greatest(0, $n - fresh - failed - solved - band), solved_size - solved) AS solved)
    FROM fresh_more),
cutoffs AS (  -- the first key of each pool's last taken problem (NULL: none taken)
    SELECT s.pool, s.smallest[CASE s.pool WHEN 'fresh' THEN t.fresh WHEN 'failed' THEN t.failed
                                          WHEN 'solved' THEN t.solved ELSE t.band END] AS cutoff
    FROM (SELECT pool, min(first_key, $n) AS smallest FROM candidates GROUP BY pool) s, taken t),
contenders AS (  -- only problems up to the cutoff can be taken: the tie key and the order are theirs alone
    SELECT c.*, sha256($salt || ':' || c.id) AS tie  -- selection.tie_key
    FROM candidates c JOIN cutoffs k ON k.pool = c.pool
    WHERE c.first_key <= k.cutoff OR (c.pool = 'solved' AND $solved_by_level AND k.cutoff IS NOT NULL)),
ranked AS (  -- each pool's order; solved by level: the n-th of each level (lowest first), n = 1, 2...
    SELECT id, pool, row_number() OVER (PARTITION BY pool ORDER BY
               CASE WHEN pool = 'solved' AND $solved_by_level THEN level_turn ELSE first_key END,
               CASE WHEN pool = 'failed' OR (pool = 'solved' AND $solved_by_level) THEN level END NULLS LAST,
               tie) AS rank
    FROM (SELECT *, row_number() OVER (PARTITION BY pool, level ORDER BY tie) AS level_turn FROM contenders)),
chosen AS (
    SELECT r.id, r.pool, r.rank FROM ranked r, taken t
    WHERE r.rank <= CASE r.pool WHEN 'fresh' THEN t.fresh WHEN 'failed' THEN t.failed
                                WHEN 'solved' THEN t.solved ELSE t.band END)
SELECT {problem_json("p")} FROM chosen c JOIN problems p ON p.id = c.id
ORDER BY CASE c.pool WHEN 'fresh' THEN 0 WHEN 'band' THEN 1 WHEN 'failed' THEN 2 ELSE 3 END, c.rank
"""


def select_round_sql(
    reader: StoreReader,
    n: int,
    low: float,
    high: float,
    salt: int,
    fresh_fraction: float = 0.5,
    failed_fraction: float = 0.0,
    solved_fraction: float = 0.0,
    min_attempts: int = 1,
    solved_by_level: bool = False,
    last_n_rounds: int | None = None,
    min_vote_share: float = 0.0,
) -> list[Problem]:
    """What `select_round_problems(trusted(store.problems(), min_vote_share), rates, ...)` picks, with
    `rates` the store's all-time solve rates overlaid with those of its last `last_n_rounds` rounds,
    answered by the store: only the chosen problems travel. `reader` is a stage's transaction, or a
    `LocalReader` on a `Store` (tests, bench/scale.py)."""
    params = {
        "n": n,
        "low": low,
        "low_edge": low - 1e-9,  # as records.rate_within
        "high_edge": high + 1e-9,
        "salt": str(salt),
        "min_attempts": min_attempts,
        "solved_by_level": solved_by_level,
        "last_n_rounds": last_n_rounds,
        "min_vote_share": min_vote_share - 1e-9,  # as selection.trusted
    }
    for pool, count in quotas(n, fresh_fraction, failed_fraction, solved_fraction).items():
        params[f"{pool}_quota"] = count
    return reader.read(StoreQueries.problems_by_query, SELECT_ROUND, params)


def select_configured(reader: StoreReader, selection: SelectionConfig, n: int, salt: int) -> list[Problem]:
    """The loop's selection of a round's `n` problems (run/stages.py) with `selection.*`; what
    bench/scale.py times through the store actor (a `StageTransaction` on it) or a `LocalReader`."""
    return select_round_sql(
        reader,
        n,
        selection.band_low,
        selection.band_high,
        salt,
        selection.fresh_fraction,
        selection.failed_fraction,
        selection.solved_fraction,
        solved_by_level=selection.solved_by_level,
        last_n_rounds=selection.last_n_rounds,
        min_vote_share=selection.min_vote_share,
    )
