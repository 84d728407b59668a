"""What a long run's per-round work costs at round 10 and at round 1,000 (issue 30): does a round's
cost grow with the run, does the disk grow by the same amount each round, does the driver's memory
stay flat.

A synthetic run is written with bulk SQL into a real store file of the project's schema (the write
path, `Store.append`, would take hours for 20M attempts): `--rounds` rounds over `--problems`
problems (the same number created each round, seeds in round 0; levels 1-5; a latent difficulty
that puts them in the failed, band or solved pool once attempted, many never attempted, i.e. fresh;
a vote share on one in twenty), `--attempts` attempts spread evenly over the rounds (k =
solver.attempts per problem, so a round attempts attempts/(rounds*k) problems and selects as many),
`problem_counts` and `problem_totals` filled from them as migrations 7 and 8 do, and a round's
policies, rounds and stage records (its `RoundState` with the selected ids and the RNG states, as
the loop writes them). The newest two rounds' attempts carry 256 token ids and log-probs each; the
Checkpoint stage's `Store.forget_token_arrays` empties older rounds' as the loop does. The fill runs in a child
process, so the driver's peak RSS is what the loop's reads cost it. The run directory is laid out
as the loop lays it out (config.yaml, store.duckdb, snapshots/).

At the end of round 10 and of round `--rounds`, with the store served by a store actor started as
the runner starts it (a local Ray cluster, `spawn_on_driver_node`, reads through a
`StageTransaction`), it times:

- select: the loop's selection call, `select_configured` (the store-side query), for the next round;
- snapshot: the round's Snapshot stage, `StageTransaction.export_snapshot` holding its RoundStats
  (round 1,000 is a multiple of store.snapshot_compact_every: its snapshot also merges the files);
- inspect: `curriculum inspect`'s summary (`summarize`) and its tables, from the snapshots;
- resume: what a resumed run reads back through the actor: the newest round's stage records
  (`loop.resume`'s last state), then the runner's `read_finished` (MLflow has every round);
- band query: `problems_in_band` over the last selection.last_n_rounds rounds, through the actor;

and the disk (store file after a checkpoint plus snapshots/) at each round end, as MB per round
averaged over rounds 3-10 and over the last `--compact-every` rounds.

    python bench/scale.py                          # 1,000 rounds, 1M problems, 20M attempts: ~15 min, ~5 GB
    python bench/scale.py --attempts 100000000     # where the disk allows
    python bench/scale.py --rounds 12 --problems 2000 --attempts 20000 --compact-every 4   # seconds (the test)

Timings are the median of --repeats calls after one untimed call (the first call is printed too);
the snapshot is written once per round, so it is timed once. Last lines:
RESULT attempts=... select_ms_round_10=... select_ms_round_1000=... (the last round's number in the
key is --rounds) ... and GOALS with each goal and whether it is met: round-1,000 costs within 2x of
round 10's (select, resume; the snapshot of a round between merges, late vs early), band query <=
100 ms, disk per round late within 1.5x of early, driver peak RSS at the end within 1.5x of that at
round 10 (inspect runs in a child process, as the command does: its peak RSS is reported apart).
"""

from __future__ import annotations

import argparse
import io
import math
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.store import timed_ms as timed  # noqa: E402
from curriculum.config import Config, to_yaml  # noqa: E402
from curriculum.records import PolicyVersion, RoundStats  # noqa: E402
from curriculum.rundir import RunLayout  # noqa: E402
from curriculum.store import Store  # noqa: E402

EARLY = 10  # the early round measured
TOKENS = 256  # token ids and log-probs of each of the newest rounds' attempts
GOAL_RATIO = 2.0  # round-1,000 costs within this factor of round 10's
BAND_GOAL_MS = 100.0
DISK_RATIO = 1.5  # disk per round "constant": late within this factor of early
RSS_RATIO = 1.5  # driver memory "flat"

# Estimated bytes on disk (store file, WAL, snapshots) a fill needs, checked before it starts.
BYTES_PER_ATTEMPT = 160  # store ~90 B, its Parquet snapshot ~40 B, headroom
BYTES_PER_PROBLEM = 600
BYTES_PER_TOKEN = 12 * 3  # int32 id + float64 log-prob; two rounds held, and one being forgotten


# --------------------------------------------------------------------------- the synthetic run


class Shape:
    """The run's sizes and where each round's rows fall (every count follows from the arguments)."""

    def __init__(self, rounds: int, problems: int, attempts: int, k: int) -> None:
        self.rounds, self.problems, self.attempts, self.k = rounds, problems, attempts, k
        self.per_round = attempts // rounds  # attempts of one round
        self.selected = max(1, self.per_round // k)  # problems a round attempts (and selects)

    def first_problem(self, round: int) -> int:
        """Index of the first problem created in `round` (rounds 0..rounds create problems/(rounds+1) each)."""
        return -(-round * self.problems // (self.rounds + 1))


# Problem i: id, created in round i*(R+1)//P, a level, a latent solve probability (30% hard: 0.05,
# 40% in band: 0.5, 30% easy: 0.95); the attempts of round r go to problems created before r.
_PID = "substr(md5('problem:' || ({i})::VARCHAR), 1, 16)"
_PROBLEMS = f"""INSERT INTO problems BY NAME
SELECT {_PID.format(i="i")} AS id,
       'What is ' || i || ' + ' || (i * 7919 % 100000) || '? (synthetic)' AS question,
       (i + i * 7919 % 100000)::VARCHAR AS answer, 'Add the two numbers.' AS solution,
       CASE WHEN r = 0 THEN 'seed' WHEN i % 10 = 0 THEN 'generator' ELSE 'teacher' END AS source,
       CASE WHEN r > 0 THEN {_PID.format(i="hash(i, 'parent') % $first_of_round_1")} END AS parent_id,
       'addition' AS family, (1 + hash(i, 'level') % 5)::INTEGER AS level,
       ['addition', 'carry'] AS concepts, MAP {{'digits': 1 + hash(i, 'level') % 5}} AS knobs,
       r AS round_created, 'bench' AS created_by, CASE WHEN r > 0 THEN r - 1 END AS model_version,
       CASE WHEN i % 20 = 0 THEN 'model' ELSE 'oracle' END AS answer_source,
       CASE WHEN i % 20 = 0 THEN 0.3 + (hash(i, 'vote') % 70) / 100.0 END AS vote_share
FROM (SELECT i, (i * ($rounds + 1) // $problems)::INTEGER AS r FROM range($lo, $hi) t(i))"""

_ATTEMPTS = f"""INSERT INTO attempts BY NAME
WITH a AS (
    SELECT j, r, (j % $per_round) // $k AS slot, (j % $per_round) % $k AS sample,
           hash(r, (j % $per_round) // $k) % ((r * $problems + $rounds) // ($rounds + 1)) AS problem
    FROM (SELECT j, (1 + j // $per_round)::INTEGER AS r FROM range($lo, $hi) t(j)))
SELECT substr(md5('attempt:' || j::VARCHAR), 1, 16) AS id, {_PID.format(i="problem")} AS problem_id,
       r - 1 AS policy_version, sample::INTEGER AS sample_index, r AS round,
       'Add the units, carry ' || (j % 2) || ', then the tens. The answer is ' || (j % 997) || '.' AS completion,
       (j % 997)::VARCHAR AS extracted_answer, correct, correct::INTEGER::DOUBLE AS reward,
       (40 + hash(j) % 200)::INTEGER AS num_tokens, -((hash(j, 'lp') % 4000) / 100.0) AS logprob,
       'solver-' || (sample % 4) AS created_by,
       CASE WHEN r >= $arrays_from THEN list_transform(range({TOKENS}), lambda t: ((j * 31 + t) % 32000)::INTEGER)
            ELSE []::INTEGER[] END AS token_ids,
       CASE WHEN r >= $arrays_from THEN list_transform(range({TOKENS}), lambda t: -((j + t) % 100) / 100.0)
            ELSE []::DOUBLE[] END AS token_logprobs
FROM (SELECT *, hash(j, 'correct') % 1000 < CASE hash(problem, 'difficulty') % 10
                     WHEN 0 THEN 50 WHEN 1 THEN 50 WHEN 2 THEN 50 WHEN 7 THEN 950 WHEN 8 THEN 950
                     WHEN 9 THEN 950 ELSE 500 END AS correct FROM a)"""

_COUNTS = """INSERT INTO problem_counts
SELECT problem_id, round, count(*), count_if(correct) FROM attempts
WHERE round BETWEEN $lo AND $hi GROUP BY problem_id, round"""
_TOTALS = """INSERT INTO problem_totals
SELECT problem_id, sum(attempts), sum(correct) FROM problem_counts WHERE round BETWEEN $lo AND $hi GROUP BY problem_id
ON CONFLICT (problem_id) DO UPDATE SET attempts = attempts + excluded.attempts, correct = correct + excluded.correct"""


def round_records(shape: Shape, round: int, rng_state: dict) -> list:
    """The round's policy, RoundStats and stage records (one per stage, each with the round's state)."""
    from curriculum.run.resume import RoundState
    from curriculum.run.stages import STAGES

    metrics = {f"eval/level_{level}/accuracy": 0.5 for level in range(1, 6)}
    metrics |= {"eval/accuracy": 0.5, "attempts": float(shape.per_round), "selected": float(shape.selected)}
    metrics |= {f"health/{name}": 0.5 for name in ("distinct_2", "near_duplicate_rate", "mean_length")}
    seconds = {stage: 1.0 for stage in STAGES}
    ids = [f"{round:06d}{i:010d}" for i in range(shape.selected)]  # 16 characters, as a problem id
    records: list = [
        PolicyVersion(
            version=round,
            round=round,
            parent_version=round - 1,
            adapter_path=f"checkpoints/policy_v{round:04d}",
            algorithm="grpo",
            metrics={"loss": 0.1},
        ),
        RoundStats(round=round, policy_version=round, metrics=metrics, seconds=seconds),
    ]
    state = RoundState(round=round, start_version=round - 1, policy_version=round, problem_ids=ids, rng=rng_state)
    for stage in STAGES:
        state.done.append(stage)
        state.metrics, state.seconds[stage] = metrics, 1.0
        records.append(state.record(stage))
    return records


def fill(
    path: str, shape: Shape, first: int, last: int, snapshots: str, compact_every: int, snapshot: str, out: Any
) -> None:
    """Rounds `first`..`last` into the store at `path` (in a child process): problems created in them
    (round 0's seeds with round 1), their attempts, counts and records; `snapshot` "each": round by
    round, each followed by what the loop's Snapshot and Checkpoint stages do; "last": all at once,
    then one snapshot of `last` (a catch-up); "none": all at once, the snapshot left to `measure`.
    Puts {round: ms its snapshot took} into the queue `out`."""
    from curriculum.run.resume import capture_rng

    rng_state = capture_rng()  # numpy is imported (by pyarrow): its state is saved too, as the loop's
    snapshot_ms: dict[int, float] = {}
    with Store(path) as store:
        con = store.con
        con.execute("SET enable_progress_bar = false")  # the long inserts would print bars into the output
        each = snapshot == "each"
        for round in range(first, last + 1) if each else [last]:
            lo = round if each else first  # rounds filled by this pass
            con.begin()
            params = {"rounds": shape.rounds, "problems": shape.problems}
            problems = {"lo": shape.first_problem(0 if lo == 1 else lo), "hi": shape.first_problem(round + 1)}
            con.execute(_PROBLEMS, params | problems | {"first_of_round_1": max(1, shape.first_problem(1))})
            attempts = {"lo": (lo - 1) * shape.per_round, "hi": round * shape.per_round, "k": shape.k}
            con.execute(_ATTEMPTS, params | attempts | {"per_round": shape.per_round, "arrays_from": round - 1})
            for counts in (_COUNTS, _TOTALS):
                con.execute(counts, {"lo": lo, "hi": round})
            con.commit()
            for chunk in range(lo, round + 1, 50):  # a catch-up's records a few rounds at a time
                rounds = range(chunk, min(chunk + 50, round + 1))
                store.append([r for rr in rounds for r in round_records(shape, rr, rng_state)])
            if snapshot != "none":
                start = time.perf_counter()
                store.export_snapshot(snapshots, round, compact_every)  # what the Snapshot stage writes
                snapshot_ms[round] = (time.perf_counter() - start) * 1000
                store.forget_token_arrays(round - 2)  # what the Checkpoint stage empties (max_staleness 1)
            store.checkpoint()
    out.put(snapshot_ms)


def run_inspect(run_dir: str, repeats: int, out: Any) -> None:
    """`curriculum inspect`'s summary (`summarize`) and its tables, timed in a child process (the
    command runs in its own process, not the loop's driver). Puts (first ms, median ms, rounds,
    peak RSS in MiB) into the queue `out`."""
    from rich.console import Console

    from curriculum.report.summary import summarize
    from curriculum.report.views import inspect_views

    def once() -> int:
        summary = summarize(run_dir)
        printer = Console(file=io.StringIO(), width=160)
        for view in inspect_views(summary):
            printer.print(view)
        return len(summary["rounds"])

    out.put((*timed(once, repeats), rss_mib()))


def in_child(target: Any, *args: Any) -> Any:
    """`target(*args, queue)` in a fresh process (the driver's memory stays the loop's); what it put."""
    context = multiprocessing.get_context("spawn")
    out = context.SimpleQueue()
    child = context.Process(target=target, args=(*args, out))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"{target.__name__} failed (exit code {child.exitcode}); its error is printed above")
    return out.get()


def disk_bytes(layout: RunLayout) -> int:
    files = [layout.store, *layout.snapshots.rglob("*")]
    return sum(f.stat().st_size for f in files if f.is_file())


def check_disk(where: Path, shape: Shape) -> int:
    need = BYTES_PER_ATTEMPT * shape.attempts + BYTES_PER_PROBLEM * shape.problems
    need += BYTES_PER_TOKEN * TOKENS * shape.per_round
    free = shutil.disk_usage(where).free
    if free < need:
        raise SystemExit(
            f"--attempts {shape.attempts}: the fill needs about {need:,} bytes on {where}, {free:,} are free "
            "(fewer --attempts, or --dir on a larger disk)"
        )
    return need


# --------------------------------------------------------------------------- timings


def measure(config: Config, layout: RunLayout, shape: Shape, round: int, repeats: int) -> dict[str, float]:
    """The end of round `round` (its rows filled, its snapshot not yet written), with the store
    served by a store actor: the round's snapshot, the next round's selection, the band query,
    inspect and resume's read-back. The actor closes the store at the end."""
    from agents import cluster
    from agents import roles as factories
    from curriculum.curricula.selection_sql import select_configured
    from curriculum.run.resume import last_state, read_finished, round_seed
    from curriculum.run.transaction import StageTransaction
    from curriculum.store.queries import StoreQueries

    ray_cfg = config.ray
    store = cluster.spawn_on_driver_node(
        "store", ray_cfg.roles()["store"], partial(factories.make_store, str(layout.store)), ray_cfg.max_restarts
    )
    store.ready()
    out: dict[str, float] = {}
    try:
        # The Snapshot stage: its RoundStats held, the round's new rows exported (the records were
        # filled with the round's other rows: the held one is already stored and changes nothing).
        tx = StageTransaction(store)
        tx.append([RoundStats(round=round, policy_version=round, metrics={}, seconds={})])
        start = time.perf_counter()
        tx.export_snapshot(str(layout.snapshots), round, config.store.snapshot_compact_every, False)
        out["snapshot_ms"] = (time.perf_counter() - start) * 1000
        store.call(Store.forget_token_arrays, round - 2).result()  # the Checkpoint stage

        salt = round_seed(config.experiment.seed, round + 1, "select")
        first, out["select_ms"], chosen = timed(
            lambda: select_configured(StageTransaction(store), config.selection, shape.selected, salt), repeats
        )
        print(f"  select: {len(chosen)} problems (of {shape.selected}), first {first:.0f} ms")  # type: ignore[arg-type]
        sel = config.selection
        first, out["band_query_ms"], band = timed(
            lambda: StageTransaction(store).read(
                StoreQueries.problems_in_band,
                sel.band_low,
                sel.band_high,
                min_attempts=config.solver.attempts,
                last_n_rounds=sel.last_n_rounds,
            ),
            repeats,
        )
        print(f"  band query: {len(band)} problems, first {first:.0f} ms")  # type: ignore[arg-type]

        def resume() -> tuple[int, int]:  # loop.resume's read, then the runner's (every round logged)
            state = last_state(store.call(Store.stage_records, last_round=True).result())
            finished = read_finished(store, logged=set(range(round + 1)))
            assert state is not None and state.round == round and max(finished.rounds) == round
            return len(finished.rounds), len(finished.states)

        first, out["resume_ms"], (count, states) = timed(resume, repeats)  # type: ignore[misc]
        print(f"  resume: {count} finished rounds, {states} states read back, first {first:.0f} ms")

        first, out["inspect_ms"], count, out["inspect_peak_rss_mib"] = in_child(
            run_inspect, str(layout.root), max(1, repeats // 2)
        )
        print(f"  inspect: {count} rounds, first {first:.0f} ms")
        store.call(Store.close).result()
    finally:
        import ray

        ray.kill(store.handle, no_restart=True)
    return out


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1000, help=f"rounds of the run (more than {EARLY})")
    parser.add_argument("--problems", type=int, default=1_000_000, help="problems at the last round")
    parser.add_argument("--attempts", type=int, default=20_000_000, help="attempts at the last round")
    parser.add_argument("--compact-every", type=int, help="store.snapshot_compact_every (default: the config's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the first")
    parser.add_argument("--dir", type=Path, help="where the run directory goes (default: a temporary folder)")
    args = parser.parse_args()
    config = Config()
    if args.compact_every:
        store_cfg = config.store.model_copy(update={"snapshot_compact_every": args.compact_every})
        config = config.model_copy(update={"store": store_cfg})
    compact_every = config.store.snapshot_compact_every
    if args.rounds <= EARLY + 1:
        raise SystemExit(f"--rounds {args.rounds}: must be above {EARLY + 1}")
    shape = Shape(args.rounds, args.problems, args.attempts, config.solver.attempts)
    if shape.first_problem(1) < 1 or shape.per_round < shape.k:
        raise SystemExit("--problems and --attempts: too few for the rounds (a problem and k attempts a round)")
    parent = args.dir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    need = check_disk(parent, shape)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(
        f"run: {shape.rounds} rounds, {shape.problems:,} problems, {shape.attempts:,} attempts "
        f"({shape.per_round:,} a round, {shape.selected:,} problems x k={shape.k}); needs ~{need / 1e9:.1f} GB"
    )

    from agents import cluster

    with tempfile.TemporaryDirectory(prefix="bench_scale_", dir=parent) as tmp:
        layout = RunLayout(Path(tmp) / "run")
        layout.root.mkdir()
        layout.config.write_text(to_yaml(config))
        store, snaps = str(layout.store), str(layout.snapshots)
        cluster.start_ray(config.ray)
        results: dict[str, float] = {}
        disk: dict[int, int] = {}
        try:
            start = time.perf_counter()
            per_round = in_child(fill, store, shape, 1, 2, snaps, compact_every, "each")
            disk[2] = disk_bytes(layout)
            per_round |= in_child(fill, store, shape, 3, EARLY - 1, snaps, compact_every, "each")
            in_child(fill, store, shape, EARLY, EARLY, snaps, compact_every, "none")  # its rows, not its snapshot
            print(f"filled to round {EARLY} in {time.perf_counter() - start:.1f} s; at round {EARLY}:")
            results |= {f"{k}_round_{EARLY}": v for k, v in measure(config, layout, shape, EARLY, args.repeats).items()}
            disk[EARLY] = disk_bytes(layout)
            rss_early = rss_mib()

            start = time.perf_counter()
            # The last compact_every rounds are written one by one, as the loop does: the last one merges
            # that many rounds' files, as in a run. Before them, one catch-up snapshot, which the first
            # of them (`late`) merges into a block.
            late = max(EARLY, args.rounds - compact_every)
            if late - 1 > EARLY:
                in_child(fill, store, shape, EARLY + 1, late - 1, snaps, compact_every, "last")
            if late > EARLY:
                in_child(fill, store, shape, late, late, snaps, compact_every, "each")
            disk[late] = disk_bytes(layout)
            if args.rounds - 1 > late:
                per_round |= in_child(fill, store, shape, late + 1, args.rounds - 1, snaps, compact_every, "each")
            in_child(fill, store, shape, args.rounds, args.rounds, snaps, compact_every, "none")
            print(f"filled to round {args.rounds} in {time.perf_counter() - start:.1f} s; at round {args.rounds}:")
            measured = measure(config, layout, shape, args.rounds, args.repeats)
            results |= {f"{k}_round_{args.rounds}": v for k, v in measured.items()}
            disk[args.rounds] = disk_bytes(layout)
        finally:
            cluster.stop_ray()
        with Store(store, read_only=True) as done:
            counts = done.counts()
        print(f"store: {layout.store.stat().st_size / 2**20:,.0f} MiB, {counts}")
        print(f"disk (store + snapshots) at rounds {sorted(disk)}: {[f'{b / 2**20:.0f} MiB' for b in disk.values()]}")

    # The snapshots the fill wrote round by round (a Store in the fill's process, not the actor),
    # those that merged files apart: what a round costs between merges, early and late.
    def plain(rounds: range) -> list[float]:
        return [per_round[n] for n in rounds if n in per_round and n % compact_every]

    plain_ms = {}
    for label, rounds in (("early", range(3, EARLY)), ("late", range(late + 1, args.rounds))):
        if plain(rounds):
            plain_ms[label] = statistics.median(plain(rounds))
            print(
                f"snapshot of one round, no merge, {label} (rounds {rounds.start}-{rounds.stop - 1}, in-process): "
                f"median {plain_ms[label]:.0f} ms"
            )
    merges = {n: ms for n, ms in per_round.items() if n % compact_every == 0 and n > late}
    if merges:
        print(
            f"snapshots that merged {compact_every - 1} rounds' files: "
            + ", ".join(f"round {n} {ms:.0f} ms" for n, ms in merges.items())
        )
    early_mb = (disk[EARLY] - disk[2]) / (EARLY - 2) / 1e6
    late_mb = (disk[args.rounds] - disk[late]) / (args.rounds - late) / 1e6
    rss_late = rss_mib()
    r, e = args.rounds, EARLY
    line = {"attempts": counts["attempts"]}
    for key in ("select_ms", "snapshot_ms", "inspect_ms", "resume_ms"):
        line[f"{key}_round_{e}"] = results[f"{key}_round_{e}"]
        line[f"{key}_round_{r}"] = results[f"{key}_round_{r}"]
    line |= {
        "disk_growth_per_round_mb": late_mb,
        "disk_growth_per_round_mb_early": early_mb,
        "driver_peak_rss_mib": rss_late,
        "driver_peak_rss_mib_round_10": rss_early,
        "band_query_ms": results[f"band_query_ms_round_{r}"],
        "band_query_ms_round_10": results[f"band_query_ms_round_{e}"],
        "inspect_peak_rss_mib": results[f"inspect_peak_rss_mib_round_{r}"],
        "inspect_peak_rss_mib_round_10": results[f"inspect_peak_rss_mib_round_{e}"],
    }
    line |= {f"snapshot_ms_plain_{label}": ms for label, ms in plain_ms.items()}
    goals = {
        f"select_{r}_within_2x": line[f"select_ms_round_{r}"] <= GOAL_RATIO * line[f"select_ms_round_{e}"],
        # Round r's snapshot also merges the last compact_every rounds' files (a cost bounded by K
        # rounds' rows); the rounds between merges are what must not grow with the run.
        "snapshot_late_within_2x": plain_ms.get("late", math.inf) <= GOAL_RATIO * plain_ms.get("early", 0.0),
        f"resume_{r}_within_2x": line[f"resume_ms_round_{r}"] <= GOAL_RATIO * line[f"resume_ms_round_{e}"],
        "band_query_le_100ms": line["band_query_ms"] <= BAND_GOAL_MS,
        "disk_per_round_constant": late_mb <= DISK_RATIO * max(early_mb, 1e-9),
        "driver_memory_flat": rss_late <= RSS_RATIO * rss_early,
    }
    ratios = {k: line[f"{k}_ms_round_{r}"] / max(line[f"{k}_ms_round_{e}"], 1e-9) for k in ("select", "snapshot")}
    ratios |= {"resume": line[f"resume_ms_round_{r}"] / max(line[f"resume_ms_round_{e}"], 1e-9)}
    print(f"ratios round {r} / round {e}: " + ", ".join(f"{k} {v:.1f}x" for k, v in ratios.items()))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print("RESULT " + " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in line.items()))
    print("GOALS " + " ".join(f"{k}={'met' if ok else 'MISSED'}" for k, ok in goals.items()))


if __name__ == "__main__":
    main()
