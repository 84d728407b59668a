import pytest

from curriculum.records import Attempt, Problem
from curriculum.training.pairs import build_preference_pairs

PROBLEM = Problem(question="12+9=?", answer="21", solution="2+9+0=11\n1+0+1=2\nanswer: 21", source="seed")
PROMPT = "12+9=?\n"


def attempt(index: int, completion: str, correct: bool, problem: Problem = PROBLEM) -> Attempt:
    return Attempt(
        problem_id=problem.id,
        policy_version=3,
        sample_index=index,
        round=2,
        completion=completion,
        extracted_answer=completion.rsplit(" ", 1)[-1],
        correct=correct,
        reward=float(correct),
        num_tokens=len(completion),
    )


def pairs(attempts, pairing="all", max_pairs=4, problem=PROBLEM):
    return build_preference_pairs(
        problem, attempts, PROMPT, policy_version=3, round=2, pairing=pairing, max_pairs=max_pairs
    )


def test_first_pairs_the_first_wrong_with_the_first_correct_by_sample_index():
    attempts = [
        attempt(3, "answer: 20", False),
        attempt(2, "answer: 21", True),
        attempt(1, "answer: 19", False),
        attempt(0, "ok answer: 21", True),
    ]
    [pair] = pairs(attempts, pairing="first")
    assert (pair.chosen, pair.rejected) == ("ok answer: 21", "answer: 19")
    assert not pair.chosen_is_reference
    assert (pair.problem_id, pair.policy_version, pair.round, pair.prompt) == (PROBLEM.id, 3, 2, PROMPT)


def test_reference_solution_wins_when_every_attempt_fails():
    attempts = [attempt(i, f"answer: {20 - i}", False) for i in range(3)]
    result = pairs(attempts)
    assert [p.rejected for p in result] == ["answer: 20", "answer: 19", "answer: 18"]
    assert all(p.chosen == PROBLEM.solution and p.chosen_is_reference for p in result)
    [first] = pairs(attempts, pairing="first")
    assert first.chosen_is_reference and first.rejected == "answer: 20"


def test_no_wrong_attempt_gives_no_pair():
    assert pairs([attempt(i, "answer: 21", True) for i in range(4)]) == []
    assert pairs([]) == []


def test_all_fail_without_a_reference_solution_gives_no_pair():
    bare = Problem(question="3+4=?", answer="7", source="dataset")
    assert pairs([attempt(0, "answer: 8", False, bare)], problem=bare) == []


def test_all_cycles_through_the_correct_attempts_and_stops_at_max_pairs():
    attempts = [
        attempt(0, "A answer: 21", True),
        attempt(1, "answer: 1", False),
        attempt(2, "answer: 2", False),
        attempt(3, "B answer: 21", True),
        attempt(4, "answer: 3", False),
        attempt(5, "answer: 4", False),
    ]
    result = pairs(attempts, max_pairs=3)
    assert [(p.chosen, p.rejected) for p in result] == [
        ("A answer: 21", "answer: 1"),
        ("B answer: 21", "answer: 2"),
        ("A answer: 21", "answer: 3"),
    ]
    assert len(pairs(attempts, max_pairs=10)) == 4  # one per distinct wrong attempt
    assert len({p.id for p in pairs(attempts, max_pairs=10)}) == 4


def test_duplicate_wrong_completions_give_one_pair():
    attempts = [attempt(0, "answer: 21", True)] + [attempt(i, "answer: 12", False) for i in range(1, 8)]
    [pair] = pairs(attempts, max_pairs=8)
    assert pair.rejected == "answer: 12"
    duplicates_then_new = attempts + [attempt(8, "answer: 13", False)]
    assert [p.rejected for p in pairs(duplicates_then_new, max_pairs=8)] == ["answer: 12", "answer: 13"]


def test_a_completion_graded_both_ways_is_not_a_pair():
    attempts = [attempt(0, "answer: 21", True), attempt(1, "answer: 21", False), attempt(2, "answer: 2", False)]
    assert [p.rejected for p in pairs(attempts)] == ["answer: 2"]


def test_order_of_the_input_does_not_matter():
    attempts = [attempt(i, f"answer: {i}", i % 3 == 0) for i in range(8)]
    assert pairs(attempts) == pairs(list(reversed(attempts)))


def test_bad_input_is_refused_with_a_clear_message():
    other = Problem(question="1+1=?", answer="2", source="seed")
    with pytest.raises(ValueError, match=f"belongs to problem {other.id}"):
        pairs([attempt(0, "answer: 3", False, other)])
    with pytest.raises(ValueError, match="max_pairs"):
        pairs([], max_pairs=0)
    with pytest.raises(ValueError, match="pairing"):
        pairs([], pairing="best")
