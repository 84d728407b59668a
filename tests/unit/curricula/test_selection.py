import random

import pytest

from curriculum.config import band_edge_error
from curriculum.curricula.selection import gaussian_usefulness, select_round_problems
from curriculum.records import Problem, SolveRate


def problem(i: int, round_created: int = 0) -> Problem:
    return Problem(question=f"{i}+1", answer=str(i + 1), source="seed", round_created=round_created)


def test_band_edges_must_be_multiples_of_one_over_k():
    assert band_edge_error(0.25, 8, "band_low") is None
    assert band_edge_error(0.375, 8, "band_low") is None
    message = band_edge_error(0.3, 8, "band_low")
    assert message is not None and "use 0.25 or 0.375" in message
    assert band_edge_error(0.5, 1, "band_low") is not None  # one sample: every estimate is 0 or 1


def test_selection_keeps_band_prefers_informative_and_fresh():
    problems = [problem(i) for i in range(6)] + [problem(100, round_created=2), problem(101, round_created=1)]
    rates = {
        problems[0].id: SolveRate(8, 0, 0.0),  # too hard
        problems[1].id: SolveRate(8, 8, 1.0),  # too easy
        problems[2].id: SolveRate(8, 4, 0.5),
        problems[3].id: SolveRate(8, 2, 0.25),
        problems[4].id: SolveRate(8, 5, 0.625),
        problems[5].id: SolveRate(1, 1 // 2, 0.0),
    }
    chosen = select_round_problems(problems, rates, n=4, low=0.25, high=0.75, fresh_fraction=0.5, salt=0)
    ids = [p.id for p in chosen]
    assert ids[:2] == [problems[6].id, problems[7].id]  # fresh, newest first
    assert ids[2:] == [problems[2].id, problems[4].id]  # closest to 1/2 first
    assert problems[0].id not in ids and problems[1].id not in ids


def test_out_of_band_problems_fill_only_what_the_band_leaves():
    problems = [problem(i) for i in range(4)]
    rates = {
        problems[0].id: SolveRate(8, 0, 0.0),
        problems[1].id: SolveRate(8, 1, 0.125),
        problems[2].id: SolveRate(8, 8, 1.0),
        problems[3].id: SolveRate(8, 4, 0.5),
    }
    chosen = select_round_problems(
        problems, rates, n=2, low=0.25, high=0.75, fresh_fraction=0.5, failed_fraction=0.5, salt=0
    )
    assert [p.id for p in chosen] == [problems[3].id, problems[1].id]  # 0.125 is nearer the band than 0


def test_empty_slots_of_one_kind_go_to_the_other():
    problems = [problem(i) for i in range(4)]
    rates = {p.id: SolveRate(8, 4, 0.5) for p in problems[:3]}
    chosen = select_round_problems(problems, rates, n=4, low=0.25, high=0.75, fresh_fraction=0.9, salt=0)
    assert len(chosen) == 4
    only_fresh = select_round_problems(problems[3:], {}, n=3, low=0.25, high=0.75, fresh_fraction=0.0, salt=0)
    assert [p.id for p in only_fresh] == [problems[3].id]


def test_ties_do_not_depend_on_candidate_order_but_on_the_salt():
    problems = [leveled(i, 1 + i % 3) for i in range(40)]
    rates = {p.id: SolveRate(8, 8 * (i % 3) // 2, (i % 3) / 2) for i, p in enumerate(problems)}  # all tied by pool

    def pick(candidates: list[Problem], salt: int) -> list[str]:
        chosen = select_round_problems(
            candidates, rates, 12, 0.25, 0.75, salt, fresh_fraction=0, failed_fraction=0.25, solved_fraction=0.25
        )
        return [p.id for p in chosen]

    shuffled = list(problems)
    random.Random(1).shuffle(shuffled)
    assert pick(shuffled, salt=7) == pick(problems, salt=7) == pick(list(reversed(problems)), salt=7)
    assert pick(problems, salt=8) != pick(problems, salt=7)  # another round (or run) draws others


def test_gaussian_usefulness_peaks_at_center():
    assert gaussian_usefulness(0.5, 0.5, 0.2) == pytest.approx(1.0)
    assert gaussian_usefulness(0.3, 0.5, 0.2) == pytest.approx(gaussian_usefulness(0.7, 0.5, 0.2))
    assert gaussian_usefulness(0.0, 0.5, 0.2) < gaussian_usefulness(0.25, 0.5, 0.2) < 1.0


def leveled(i: int, level: int) -> Problem:
    return Problem(question=f"{i}+{level}", answer="0", source="seed", level=level)


def test_failed_and_solved_pools_get_their_shares_lowest_failed_level_first():
    failed = [leveled(i, level) for i, level in enumerate([5, 3, 4, 3])]
    solved = [leveled(10 + i, 1) for i in range(4)]
    banded = [leveled(20 + i, 2) for i in range(4)]
    rates = {
        **{p.id: SolveRate(8, 0, 0.0) for p in failed},
        **{p.id: SolveRate(8, 8, 1.0) for p in solved},
        **{p.id: SolveRate(8, 4, 0.5) for p in banded},
    }
    chosen = select_round_problems(
        failed + solved + banded,
        rates,
        n=8,
        low=0.25,
        high=0.75,
        salt=0,
        fresh_fraction=0.0,
        failed_fraction=0.25,
        solved_fraction=0.25,
    )
    by_pool = [p.level for p in chosen]
    assert by_pool.count(2) == 4 and by_pool.count(1) == 2  # the band gets what the shares leave
    assert sorted(p.level for p in chosen if p in failed) == [3, 3]  # the frontier, not the far end


def test_slots_a_pool_cannot_fill_go_to_the_band_fresh_and_solved_never_to_more_failed():
    failed = [leveled(i, 3) for i in range(4)]
    solved = [leveled(10 + i, 1) for i in range(2)]
    rates = {**{p.id: SolveRate(8, 0, 0.0) for p in failed}, **{p.id: SolveRate(8, 8, 1.0) for p in solved}}
    chosen = select_round_problems(
        failed + solved,
        rates,
        n=6,
        low=0.25,
        high=0.75,
        salt=0,
        fresh_fraction=0.0,
        failed_fraction=0.5,
        solved_fraction=0.0,
    )
    assert sorted(p.level for p in chosen) == [1, 1, 3, 3, 3]  # 3 failed at most; the round comes out smaller


def test_shares_above_one_are_a_config_error():
    from curriculum.config import SelectionConfig

    with pytest.raises(ValueError, match="above 1"):
        SelectionConfig(fresh_fraction=0.5, failed_fraction=0.4, solved_fraction=0.2)
