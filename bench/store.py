"""Store ingest and query speed at scale.

Appends synthetic but realistic Attempt records (problems x k samples x rounds,
one policy version per round, arithmetic completions of varying length) in
batches, the way the Solver hands them to the store actor, then times the
selection queries. Record construction (pydantic) is timed apart from ingest;
ingest covers records -> Arrow columns -> committed rows, plus the final
checkpoint that writes them into the database file.

    python bench/store.py               # 1,000,000 attempts (about a minute)
    python bench/store.py --rows 100000
    python bench/store.py --no-tokens   # attempts without token ids and log-probs (schema < 5)

Each attempt carries its sampled token ids and per-token log-probs (`num_tokens` of each, 20-120)
as the Solver keeps them; `--no-tokens` leaves them empty to show what they cost.

Last line: RESULT ingest_rows_per_s=<n> band_query_ms=<n>, where band_query_ms is
the median of 5 calls of problems_in_band(0.3, 0.7, min_attempts=8) over every
attempt (after one untimed call; the first call is printed above it).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curriculum.curricula.weakness import weak_problem_ids  # noqa: E402
from curriculum.records import Attempt, Problem  # noqa: E402
from curriculum.store import Store  # noqa: E402
from curriculum.store.queries import LocalReader  # noqa: E402

SAMPLES_PER_ROUND = 10  # k


def make_problems(count: int, rng: random.Random) -> tuple[list[Problem], dict[str, float]]:
    """Seeds plus Teacher variants (each pointing at an earlier problem), with a latent difficulty."""
    problems: list[Problem] = []
    difficulty: dict[str, float] = {}
    for index in range(count):
        digits = rng.randint(1, 5)
        a, b = rng.randrange(10**digits), rng.randrange(10**digits)
        is_seed = index < max(1, count // 5)
        problem = Problem(
            question=f"What is {a} + {b}? (#{index})",
            answer=str(a + b),
            source="seed" if is_seed else "teacher",
            parent_id=None if is_seed else problems[rng.randrange(len(problems))].id,
            family="addition",
            level=digits,
            concepts=["addition", "carry"] if digits > 1 else ["addition"],
            knobs={"digits": digits},
            round_created=0 if is_seed else rng.randint(0, 5),
            created_by="bench",
        )
        problems.append(problem)
        difficulty[problem.id] = min(1.0, max(0.0, digits / 5 - 0.1 + rng.uniform(-0.2, 0.2)))
    return problems, difficulty


def attempt_stream(problems, difficulty, rows, batch_size, rng, tokens: bool = True):
    """Yield (seconds spent building, batch of Attempt records) in Solver order: round by round."""
    batch: list[Attempt] = []
    built = 0
    started = time.perf_counter()
    while built < rows:
        round_ = built // (len(problems) * SAMPLES_PER_ROUND)
        problem = problems[(built // SAMPLES_PER_ROUND) % len(problems)]
        sample_index = built % SAMPLES_PER_ROUND
        p_correct = min(1.0, max(0.0, 1.0 - difficulty[problem.id] + 0.03 * round_))
        correct = rng.random() < p_correct
        answer = problem.answer if correct else str(int(problem.answer) + rng.randint(1, 9))
        steps = " ".join(f"step {i}: carry {rng.randint(0, 1)}." for i in range(rng.randint(2, 8)))
        num_tokens = rng.randint(20, 120)
        batch.append(
            Attempt(
                problem_id=problem.id,
                policy_version=round_,
                sample_index=sample_index,
                round=round_,
                completion=f"{problem.question} {steps} The answer is {answer}.",
                extracted_answer=answer,
                correct=correct,
                reward=1.0 if correct else 0.0,
                num_tokens=num_tokens,
                logprob=-rng.uniform(1.0, 40.0),
                created_by=f"solver-{sample_index % 4}",
                token_ids=[rng.randrange(2048) for _ in range(num_tokens)] if tokens else [],
                token_logprobs=[-rng.random() for _ in range(num_tokens)] if tokens else [],
            )
        )
        built += 1
        if len(batch) == batch_size or built == rows:
            yield time.perf_counter() - started, batch
            batch = []
            started = time.perf_counter()


def timed_ms(function, repeats: int) -> tuple[float, float, object]:
    """(first call ms, median of the following ``repeats`` calls ms (the first's without any), result)."""
    start = time.perf_counter()
    result = function()
    first = (time.perf_counter() - start) * 1000
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return first, statistics.median(times) if times else first, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="attempts to append")
    parser.add_argument("--batch", type=int, default=10_000, help="attempts per append call")
    parser.add_argument("--problems", type=int, default=10_000, help="distinct problems")
    parser.add_argument("--no-tokens", action="store_true", help="attempts without token ids and log-probs")
    args = parser.parse_args()
    rng = random.Random(0)
    # Other work on the machine skews every number here: say how busy it was.
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    with tempfile.TemporaryDirectory(prefix="bench_store_") as tmp, Store(Path(tmp) / "run.duckdb") as store:
        problems, difficulty = make_problems(args.problems, rng)
        start = time.perf_counter()
        store.append(problems)
        # This first append also pays pyarrow's one-time lazy import of pandas (~0.3 s per process).
        print(f"problems: {len(problems)} appended in {time.perf_counter() - start:.2f} s")

        build_s = ingest_s = ingest_cpu_s = 0.0
        inserted = 0
        first_batch = None
        stream = attempt_stream(problems, difficulty, args.rows, args.batch, rng, tokens=not args.no_tokens)
        for build_seconds, batch in stream:
            build_s += build_seconds
            start, start_cpu = time.perf_counter(), time.process_time()
            inserted += store.append(batch)
            ingest_s += time.perf_counter() - start
            ingest_cpu_s += time.process_time() - start_cpu
            first_batch = first_batch or batch
        start, start_cpu = time.perf_counter(), time.process_time()
        store.checkpoint()  # rows into the database file proper, not only the WAL
        checkpoint_s = time.perf_counter() - start
        ingest_s += checkpoint_s
        ingest_cpu_s += time.process_time() - start_cpu
        assert inserted == args.rows, (inserted, args.rows)

        start = time.perf_counter()
        again = store.append(first_batch)
        resend_ms = (time.perf_counter() - start) * 1000
        assert again == 0

        ingest_rate = args.rows / ingest_s
        if not args.no_tokens:
            stored = store.con.execute("SELECT sum(len(token_ids)) FROM attempts").fetchone()[0]
            print(f"token ids and log-probs: {stored:,} of each stored ({stored / ingest_s:,.0f} tokens/s)")
        print(f"records built: {args.rows} Attempt in {build_s:.2f} s ({args.rows / build_s:,.0f} records/s, pydantic)")
        print(
            f"ingest: {args.rows} rows in {ingest_s:.2f} s incl. final checkpoint {checkpoint_s:.2f} s "
            f"({ingest_rate:,.0f} rows/s, batches of {args.batch}; up to commit only "
            f"{args.rows / (ingest_s - checkpoint_s):,.0f} rows/s); CPU time of this process "
            f"{ingest_cpu_s:.2f} s, all threads"
        )
        print(f"re-sent batch of {len(first_batch)}: 0 inserted in {resend_ms:.1f} ms")
        print(f"file: {(Path(tmp) / 'run.duckdb').stat().st_size / 2**20:.0f} MiB, counts {store.counts()}")

        first, median, rates = timed_ms(lambda: store.solve_rates(), 5)
        print(f"solve_rates() over all attempts: {len(rates)} problems, first {first:.1f} ms, median {median:.1f} ms")
        latest = store.con.execute("SELECT max(policy_version) FROM attempts").fetchone()[0]
        for label, kwargs in [
            ("all attempts", {}),
            ("last 2 rounds", {"last_n_rounds": 2}),
            ("latest policy", {"policy_version": latest}),
        ]:

            def query(kwargs=kwargs):
                return store.problems_in_band(0.3, 0.7, min_attempts=8, **kwargs)

            first, median, band = timed_ms(query, 5)
            print(
                f"problems_in_band(0.3, 0.7) {label}: {len(band)} problems, "
                f"first {first:.1f} ms, median {median:.1f} ms"
            )
            if label == "all attempts":
                band_ms = median
        first, median, weak = timed_ms(lambda: weak_problem_ids(LocalReader(store)), 3)
        print(f"weak_problem_ids(): {len(weak)} problems, first {first:.1f} ms, median {median:.1f} ms")
        first, median, _ = timed_ms(lambda: store.descendants(problems[0].id), 3)
        print(f"descendants(seed): first {first:.1f} ms, median {median:.1f} ms")
        start = time.perf_counter()
        store.export_parquet(Path(tmp) / "snapshot")
        print(f"export_parquet: {(time.perf_counter() - start):.2f} s")

    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(f"RESULT ingest_rows_per_s={ingest_rate:.0f} band_query_ms={band_ms:.1f}")


if __name__ == "__main__":
    main()
