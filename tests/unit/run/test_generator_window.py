"""The Generator's window (generator.window_rounds): it trains on the Teacher's pairs of the last N
rounds, selected by the store's query; None keeps every round's (the behaviour before the window)."""

import pytest

from curriculum.config import Config, GeneratorConfig
from curriculum.records import Attempt, Problem
from curriculum.run.stages import distil_examples
from curriculum.store import Store
from curriculum.store.queries import LocalReader


def attempts(problem, round, correct, k=4):
    return [
        Attempt(
            problem_id=problem.id,
            policy_version=round,
            sample_index=i,
            round=round,
            completion=f"try {i}",
            extracted_answer=None,
            correct=i < correct,
            reward=float(i < correct),
            num_tokens=3,
        )
        for i in range(k)
    ]


@pytest.fixture
def store(tmp_path):
    """Two seeds; in each round 1-4 the Teacher wrote one child of a seed (solved `round` of 4 times),
    plus a Teacher problem without a parent (not a pair) and a Generator problem (not the Teacher's)."""
    with Store(tmp_path / "store.duckdb") as store:
        seeds = [Problem(question=f"{a}+{a}=?", answer=str(2 * a), source="seed") for a in (1, 2)]
        store.append(seeds)
        for round in range(1, 5):
            child = Problem(
                question=f"{round}0+{round}=?",
                answer=str(11 * round),
                source="teacher",
                parent_id=seeds[round % 2].id,
                round_created=round,
            )
            orphan = Problem(question=f"{round}00+1=?", answer="0", source="teacher", round_created=round)
            proposed = Problem(
                question=f"{round}+9=?", answer="0", source="generator", parent_id=seeds[0].id, round_created=round
            )
            store.append([child, orphan, proposed])
            store.append(attempts(child, round, correct=round % 4))
        yield store


def test_the_window_keeps_the_teacher_pairs_of_the_last_rounds(store):
    reader = LocalReader(store)
    every = distil_examples(reader, 4, None)
    assert [child.round_created for _, child, _ in every] == [1, 2, 3, 4]
    assert [rate for *_, rate in every] == [0.25, 0.5, 0.75, 0.0]
    assert all(child.parent_id == parent.id and parent.source == "seed" for parent, child, _ in every)
    last_two = distil_examples(reader, 4, 2)
    assert [child.round_created for _, child, _ in last_two] == [3, 4]
    assert last_two == every[2:]  # the same examples, in the same order
    assert distil_examples(reader, 4, 1) == every[3:]
    assert distil_examples(reader, 4, 10) == every  # a window longer than the run: every round's


def test_the_window_is_applied_by_the_query(store):
    """The store returns only the window's rows (the read is bounded, not filtered after reading all)."""
    assert [p.round_created for p in store.problems(source="teacher", since_round=3)] == [3, 3, 4, 4]
    assert len(store.problems(since_round=5)) == 0
    assert len(store.problems(source="teacher")) == 8


def test_window_rounds_default_and_bad_values():
    # The default leaves every shipped recipe (at most 10 rounds) as it was.
    assert GeneratorConfig().window_rounds == 10
    assert Config(generator={"window_rounds": None}).generator.window_rounds is None
    with pytest.raises(ValueError, match="window_rounds"):
        Config(generator={"window_rounds": 0})
