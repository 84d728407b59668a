"""SwS weakness mining on a planted accuracy history, and the synthesis budget."""

import pytest

from curriculum.config import ArithmeticWorldConfig, WeaknessConfig
from curriculum.curricula.weakness import (
    allocate_budget,
    concept_of,
    failure_ratios,
    mine,
    weak_problem_ids,
)
from curriculum.records import Attempt, Problem
from curriculum.store import Store
from curriculum.store.queries import LocalReader
from curriculum.worlds.arithmetic import ArithmeticWorld

WORLD = ArithmeticWorld(ArithmeticWorldConfig(families=["add", "sub"], max_level=3), seed=0)
CONFIG = WeaknessConfig(threshold=0.5, window=3, min_rounds=2)


def problem(question):
    return WORLD.problem_from_question(question, source="seed")


def plant(store, question, correct_by_round, k=8):
    """A problem whose attempts in round r are `correct_by_round[r]` right out of k."""
    p = problem(question)
    store.append([p])
    store.append(
        [
            Attempt(
                problem_id=p.id,
                policy_version=r,
                sample_index=i,
                round=r,
                completion=f"try {i}",
                extracted_answer=None,
                correct=i < c,
                reward=float(i < c),
                num_tokens=5,
            )
            for r, c in correct_by_round.items()
            for i in range(k)
        ]
    )
    return p


@pytest.fixture
def planted(tmp_path):
    """Four concepts; the weak problems (best < 1/2 and falling over the last 3 rounds) are marked."""
    path = tmp_path / "store.duckdb"
    store = Store(path)
    weak = [
        plant(store, "47+38=?", {1: 3, 2: 2, 3: 1}),  # add.carry, weak
        plant(store, "59+26=?", {2: 3, 3: 2}),  # add.carry, weak (two rounds are enough)
        plant(store, "52-17=?", {0: 8, 1: 3, 2: 2, 3: 0}),  # sub.borrow: fell; round 0 is outside the window
    ]
    plant(store, "68+17=?", {1: 6, 2: 5, 3: 4})  # add.carry: falling but best >= 1/2
    plant(store, "75+18=?", {1: 1, 2: 2, 3: 3})  # add.carry: low but rising
    plant(store, "81-46=?", {1: 2, 2: 2, 3: 2})  # sub.borrow: low and flat (slope 0 is not negative)
    plant(store, "12+34=?", {3: 0})  # add.no_carry: one round, no slope
    plant(store, "93-21=?", {1: 8, 2: 7})  # sub.no_borrow: fine
    plant(store, "64-35=?", {2: 4, 3: 5})  # sub.borrow: fine
    yield store, path, weak
    store.close()


def read(store):
    return LocalReader(store)


def test_mining_returns_exactly_the_planted_weak_problems(planted):
    store, _, weak = planted
    report = mine(read(store), CONFIG)
    assert report.basis == "weakness"
    assert {p.id for p in report.targets} == {p.id for p in weak}
    assert len(report.tracked) == 9
    assert [concept_of(p) for p in weak] == ["add.carry", "add.carry", "sub.borrow"]
    # Failure ratio = weak / tracked problems of the concept.
    assert report.failure_ratio == {"add.carry": 2 / 4, "add.no_carry": 0.0, "sub.borrow": 1 / 3, "sub.no_borrow": 0.0}


def test_the_history_lives_in_the_store_and_survives_reopening(planted):
    store, path, weak = planted
    before = mine(read(store), CONFIG)
    store.close()
    with Store(path) as reopened:
        after = mine(read(reopened), CONFIG)
    assert after == before


def test_without_weaknesses_the_failing_problems_are_targeted(tmp_path):
    with Store(tmp_path / "s.duckdb") as store:
        low = plant(store, "47+38=?", {1: 2})  # failing, but one round gives no slope
        plant(store, "12+34=?", {1: 8})
        report = mine(read(store), CONFIG)
        assert report.basis == "failing" and report.targets == [low]
        assert report.metrics()["weakness/basis_failing"] == 1.0
    with Store(tmp_path / "t.duckdb") as store:
        plant(store, "12+34=?", {1: 8})
        assert mine(read(store), CONFIG).basis == "none"


def test_budget_follows_the_failure_ratios():
    assert allocate_budget({"a": 0.5, "b": 0.25, "c": 0.0}, 12) == {"a": 8, "b": 4}
    # Largest remainder: 16 * (1/2, 1/3, 1/6) = (8, 5.33, 2.67) -> 8, 5, 3; the parts add up to the budget.
    assert allocate_budget({"a": 0.6, "b": 0.4, "c": 0.2}, 16) == {"a": 8, "b": 5, "c": 3}
    shares = allocate_budget({"x": 1 / 3, "y": 1 / 3, "z": 1 / 3}, 16)
    assert sum(shares.values()) == 16 and sorted(shares.values()) == [5, 5, 6]
    assert allocate_budget({"a": 0.0}, 8) == {} and allocate_budget({}, 8) == {}
    # On the planted history: add.carry fails twice as often as sub.borrow (1/2 vs 1/3) -> 6 : 4 of 10.
    ratios = {"add.carry": 0.5, "add.no_carry": 0.0, "sub.borrow": 1 / 3, "sub.no_borrow": 0.0}
    assert allocate_budget(ratios, 10) == {"add.carry": 6, "sub.borrow": 4}


def test_failure_ratios_count_every_tracked_problem():
    ps = [problem(q) for q in ("47+38=?", "59+26=?", "12+34=?")]
    assert failure_ratios(ps, [ps[0].id]) == {"add.carry": 0.5, "add.no_carry": 0.0}


def test_the_weakness_rule_runs_in_the_store_and_returns_ids(tmp_path):
    store = Store(tmp_path / "store.duckdb")

    def plant(name: str, history: dict[int, int]) -> Problem:
        p = Problem(question=name, answer="1", source="seed")
        store.append([p])
        for round_, correct in history.items():
            store.append(
                [
                    Attempt(
                        problem_id=p.id,
                        policy_version=round_,
                        sample_index=i,
                        round=round_,
                        completion=f"try {i}",
                        extracted_answer=None,
                        correct=i < correct,
                        reward=float(i < correct),
                        num_tokens=5,
                    )
                    for i in range(10)
                ]
            )
        return p

    declining_low = plant("declining low", {1: 4, 2: 4, 3: 3, 4: 2})  # window 2..4: best 0.4, slope -0.1
    plant("declining but good", {2: 9, 3: 7, 4: 6})  # best 0.9 >= 0.5
    plant("low but rising", {2: 1, 3: 2, 4: 3})  # slope > 0
    plant("one round only", {4: 0})  # fewer than min_rounds
    fell_recently = plant("fell recently", {1: 10, 2: 4, 3: 3, 4: 1})  # low only inside a 3-round window
    plant("flat low", {2: 2, 3: 2, 4: 2})  # slope 0 is not negative

    reader = LocalReader(store)
    found = weak_problem_ids(reader, threshold=0.5, window=3, min_rounds=2)
    assert found == [fell_recently.id, declining_low.id]  # steepest first (slopes -0.15 and -0.1)
    wider = weak_problem_ids(reader, threshold=0.5, window=4)
    assert wider == [declining_low.id]  # round 1's 1.0 now counts as best
    assert weak_problem_ids(reader, threshold=0.5, window=3, min_rounds=3) == found
    with pytest.raises(ValueError):
        weak_problem_ids(reader, window=1)
    store.close()
