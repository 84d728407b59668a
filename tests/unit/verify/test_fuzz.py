"""Hypothesis fuzzing of the two paths model output and retried writes take: answer extraction
+ verification, and the store's append. No crash, no hang, no partial write.

The fast tier runs a few hundred generated cases; the slow tier (`make test-slow`) runs
10,000 of each. `bench/reliability.py` reports the slowest grading it saw.
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curriculum.records import Attempt, Problem, RejectedDraft
from curriculum.store import Store, StoreError
from curriculum.verify import Verifier, extract_answer

RULES = ("auto", "boxed", "gsm8k", "answer_colon", "last_number", "none")
FAST_EXAMPLES, SLOW_EXAMPLES = 300, 10_000
FAST_STORE_EXAMPLES = 100  # ~25 ms per append (two per case): the store's own per-call cost
TIMEOUT_S = 2.0
# One grade is bounded by the per-item timeout, plus restarting the math-verify worker after a
# kill (importing sympy: seconds on a busy 2-core machine).
GRADE_BOUND_S = TIMEOUT_S + 30.0

# Pieces of LaTeX, markdown and code that answer extraction and math-verify react to.
PIECES = [
    "\\boxed{",
    "\\fbox{",
    "}",
    "{",
    "\\}",
    "\\{",
    "^",
    "^{",
    "**",
    "\\frac{",
    "\\sqrt{",
    "\\left(",
    "\\right)",
    "(",
    ")",
    "[",
    "]",
    "$",
    "\\$",
    "\\(",
    "\\)",
    "answer:",
    "Answer: ",
    "####",
    "\n",
    " ",
    ",",
    ".",
    "-",
    "+",
    "1",
    "2",
    "9" * 40,
    "0.5",
    "1,000",
    "x",
    "\\pi",
    "\\infty",
    "\\textbf{",
    "__import__('os')",
    "eval(",
    ";",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "&",
    "\\\\",
    "e^{",
    "\\ln",
    "%",
    "\\text{ cm}",
    "∞",
    "½",
]
latexish = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
texts = st.one_of(st.text(max_size=300), latexish)


@pytest.fixture(scope="module")
def verifier():
    with Verifier(timeout_s=TIMEOUT_S) as v:
        yield v


def check_grading(verifier: Verifier, completion: str, reference: str, worst: list[float]) -> None:
    for rule in RULES:
        found = extract_answer(completion, rule)
        assert found is None or (isinstance(found, str) and found)
    start = time.monotonic()
    grades = verifier.grade_many([completion, reference], [reference, reference], "auto")
    elapsed = time.monotonic() - start
    worst.append(elapsed)
    assert elapsed < GRADE_BOUND_S
    assert all(isinstance(g.correct, bool) for g in grades)


def test_extraction_and_verification_never_crash_or_hang(verifier):
    worst: list[float] = []
    cwd, env = os.getcwd(), dict(os.environ)

    @settings(max_examples=FAST_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(texts, texts)
    def fuzz(completion, reference):
        check_grading(verifier, completion, reference, worst)

    fuzz()
    assert os.getcwd() == cwd and dict(os.environ) == env  # grading has no side effects here


@pytest.mark.slow
def test_extraction_and_verification_10k_cases(verifier):
    worst: list[float] = []

    @settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(texts, texts)
    def fuzz(completion, reference):
        check_grading(verifier, completion, reference, worst)

    fuzz()
    assert len(worst) >= SLOW_EXAMPLES


# ----------------------------------------------------------------------------- store appends

printable = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)  # a record cannot hold a lone surrogate
small_int = st.integers(-(2**31), 2**31 - 1)
any_int = st.one_of(small_int, st.integers(-(2**70), 2**70))  # past int32/int64: the store must refuse cleanly


@st.composite
def batches(draw):
    """A mixed batch of problems, attempts at them and rejected drafts; sometimes with a value
    the store cannot hold, sometimes repeating earlier records."""
    problems = draw(
        st.lists(
            st.builds(
                Problem,
                question=printable,
                answer=printable,
                source=st.sampled_from(["seed", "teacher", "generator"]),
                level=st.one_of(st.none(), any_int),
                knobs=st.dictionaries(printable, any_int, max_size=3),
                concepts=st.lists(printable, max_size=3),
                round_created=small_int,
            ),
            max_size=6,
        )
    )
    attempts = [
        Attempt(
            problem_id=p.id,
            policy_version=draw(st.integers(0, 3)),
            sample_index=draw(st.integers(0, 3)),
            round=draw(st.integers(0, 3)),
            completion=draw(printable),
            extracted_answer=None,
            correct=draw(st.booleans()),
            reward=draw(st.floats(allow_nan=True)),
            num_tokens=draw(st.integers(0, 2**31 - 1)),
            logprob=draw(st.floats()),
        )
        for p in problems
    ]
    rejected = draw(
        st.lists(
            st.builds(
                RejectedDraft,
                source=st.just("teacher"),
                parent_id=printable,
                text=printable,
                reason=printable,
                round=small_int,
            ),
            max_size=3,
        )
    )
    return problems + attempts + rejected


def check_append(store: Store, records: list) -> None:
    before = store.counts()
    try:
        inserted = store.append(records)
    except StoreError:
        assert store.counts() == before  # all or nothing
        return
    after = store.counts()
    assert sum(after.values()) - sum(before.values()) == inserted
    assert store.append(records) == 0  # a retried write inserts nothing twice
    for table, key in (("problems", "id"), ("attempts", "id"), ("rejected", "id")):
        assert store.con.execute(f"SELECT count(*) - count(DISTINCT {key}) FROM {table}").fetchone()[0] == 0


def fuzz_store(examples: int) -> None:
    # In memory: the transaction logic is the same, and it spares a WAL fsync per commit.
    with Store(":memory:") as store:

        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
        @given(batches())
        def fuzz(records):
            check_append(store, records)

        fuzz()


def test_store_append_is_all_or_nothing_and_idempotent():
    fuzz_store(FAST_STORE_EXAMPLES)


@pytest.mark.slow
def test_store_append_10k_cases():
    fuzz_store(SLOW_EXAMPLES)
