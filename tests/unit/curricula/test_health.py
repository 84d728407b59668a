"""Health of a long run: each metric on known inputs, and a synthetic problem stream that collapses
into near-copies, driven round by round through a real store (the warning fires after
health.warn_after_rounds low rounds and not before, and survives a driver restart)."""

import random

import pytest

from curriculum.config import HealthConfig
from curriculum.curricula.health import (
    NearDuplicates,
    distinct_n,
    is_low_diversity,
    low_diversity_streak,
    observe_round,
    round_health,
)
from curriculum.records import Problem, RoundStats
from curriculum.store import Store
from curriculum.store.queries import LocalReader

WORDS = (
    "apple train river seven garden number price ticket marble basket cookie pencil window "
    "farmer ladder bottle candle rabbit orange circle square bridge letter coin teacher student"
).split()


def problem(question, round, source="teacher", concepts=(), level=None, vote_share=None):
    return Problem(
        question=question,
        answer="1",
        source=source,
        round_created=round,
        concepts=list(concepts),
        level=level,
        vote_share=vote_share,
        answer_source="oracle" if vote_share is None else "model",
    )


def diverse(rng, n, round, source="teacher"):
    """n word problems of 12 random words and a number each: hardly a shared bigram."""
    return [
        problem(
            " ".join(rng.choice(WORDS) for _ in range(12)) + f" {rng.randrange(10**6)}?",
            round,
            source,
            concepts=[f"c{i % 5}"],
            level=1 + i % 3,
        )
        for i in range(n)
    ]


def near_copies(template, n, round):
    """n copies of one question, each with a different last number: the collapsed stream."""
    return [problem(f"{template} {round * 1000 + i}?", round, concepts=["c0"], level=1) for i in range(n)]


# -- each metric


def test_distinct_n_counts_distinct_word_ngrams_over_all_questions():
    assert distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)  # a b, b c, a b, b d
    assert distinct_n(["a b c", "a b c"], 1) == pytest.approx(3 / 6)
    assert distinct_n(["What is 3+4?"], 3) == pytest.approx(1.0)  # what is 3 / is 3 + / 3 + 4
    assert distinct_n(["x", "x"], 2) == pytest.approx(1 / 2)  # a question shorter than n is one n-gram
    assert distinct_n([], 2) is None
    with pytest.raises(ValueError, match="n must be >= 1"):
        distinct_n(["a"], 0)


def test_near_duplicates_finds_a_near_copy_of_an_earlier_problem_only():
    index = NearDuplicates(similarity=0.8, num_perm=128, shingle=3)
    base = (
        "a farmer has twelve apples in a basket and sells five of them at the market on monday then buys "
        "three more from a neighbour who grows them in an orchard near the river how many apples are left"
    )
    index.add([(0, base)])
    copy, other = base.replace("monday", "tuesday"), "what is the sum of 3 and 4"
    assert index.observe(1, [copy, other]) == 1  # the copy with one word changed (Jaccard 33/39); not the other
    assert len(index) == 3
    # A round observed again (a stage rerun after a crash): nothing added, the same count.
    assert index.observe(1, [copy, other]) == 1
    assert index.observe(0, [base]) == 0  # not a copy of itself
    assert len(index) == 3
    # Two copies within one round: the second near-duplicates the first.
    train = "a train leaves the station at nine and travels sixty miles an hour until noon how far did it go"
    assert index.observe(2, [train, train + " then"]) == 1
    assert index.observe(3, []) == 0


def test_near_duplicates_rebuilt_in_one_go_counts_as_the_rounds_observed_one_by_one():
    rng = random.Random(1)
    rounds = {r: [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(30)] for r in range(4)}
    rounds[4] = [rounds[1][0] + " again", rounds[3][5], " ".join(rng.choice(WORDS) for _ in range(8))]
    one_by_one = NearDuplicates()
    for r in range(4):
        one_by_one.observe(r, rounds[r])
    rebuilt = NearDuplicates()
    rebuilt.add([(r, q) for r in range(4) for q in rounds[r]])
    assert len(rebuilt) == len(one_by_one) == 120
    assert rebuilt.observe(4, rounds[4]) == one_by_one.observe(4, rounds[4]) == 2


def test_round_health_reports_coverage_length_and_vote_shares():
    index = NearDuplicates()
    problems = [
        problem("What is 3+4?", 1, concepts=["add.no_carry"], level=1, vote_share=0.5),
        problem("What is 38+45?", 1, concepts=["add.carry", "add.no_carry"], level=2, vote_share=1.0),
        problem("Compute 9-7 please", 1, concepts=["sub.no_borrow"], level=1, vote_share=0.875),
        problem("Compute 91-17 please", 1, concepts=["sub.borrow"], level=None),  # oracle answer: no share
    ]
    metrics = round_health(1, problems, index, weak_vote_share=0.75)
    assert metrics["health/new_problems"] == 4
    assert metrics["health/concepts"] == 4
    assert metrics["health/levels"] == 2
    assert metrics["health/mean_tokens"] == pytest.approx(5)  # what is 3 + 4 / compute 9 - 7 please
    assert metrics["health/near_duplicate_rate"] == 0
    assert metrics["health/vote_share_mean"] == pytest.approx((0.5 + 1.0 + 0.875) / 3)
    assert metrics["health/vote_share_p10"] == pytest.approx(0.5 + 0.2 * 0.375)
    assert metrics["health/vote_share_weak"] == pytest.approx(1 / 3)
    assert len(index) == 4
    assert round_health(2, [], index, 0.75) == {"health/new_problems": 0.0}


def test_low_diversity_by_floor_or_near_duplicates_and_the_streak():
    cfg = HealthConfig(min_distinct_2=0.3, max_near_duplicates=0.5)
    assert is_low_diversity({"health/distinct_2": 0.2, "health/near_duplicate_rate": 0.0}, cfg)
    assert is_low_diversity({"health/distinct_2": 0.9, "health/near_duplicate_rate": 0.6}, cfg)
    assert not is_low_diversity({"health/distinct_2": 0.9, "health/near_duplicate_rate": 0.5}, cfg)
    assert is_low_diversity({"health/new_problems": 0.0}, cfg) is None
    assert low_diversity_streak([1.0, 1.0, 0.0, 1.0], True) == 3
    assert low_diversity_streak([1.0, 1.0], False) == 0
    assert low_diversity_streak([], True) == 1


# -- a stream that collapses


def test_a_collapsing_stream_lowers_the_metrics_and_warns_after_n_rounds_not_before(tmp_path):
    cfg = HealthConfig(warn_after_rounds=3)
    rng = random.Random(0)
    store = Store(tmp_path / "store.duckdb")
    reader = LocalReader(store)
    store.append(diverse(rng, 30, round=0, source="seed"))
    template = "a farmer has twelve apples in a basket and sells five of them at the market how many are left after"
    # Rounds 1-3 diverse; from round 4 the stream collapses into near-copies of one question;
    # round 7 adds nothing (the streak neither grows nor breaks); a new driver takes over at round 6.
    stream = {r: diverse(rng, 20, r) for r in (1, 2, 3)}
    stream.update({r: near_copies(template, 20, r) for r in (4, 5, 6, 8, 9)})
    stream[7] = []
    index = NearDuplicates(cfg.near_duplicate_similarity, cfg.num_perm, cfg.shingle)
    seen, warnings = {}, {}
    for round in range(1, 10):
        if round == 6:  # a resumed run: the index is rebuilt from the store, the streak read from `rounds`
            index = NearDuplicates(cfg.near_duplicate_similarity, cfg.num_perm, cfg.shingle)
        store.append(stream[round])
        metrics, warnings[round] = observe_round(reader, round, index, cfg)
        store.append([RoundStats(round=round, policy_version=round, metrics=metrics)])
        seen[round] = metrics
        if round == 6:
            assert len(index) == 30 + 3 * 20 + 3 * 20  # every problem so far, each once
    for round in (1, 2, 3):
        assert seen[round]["health/distinct_2"] > 0.8
        assert seen[round]["health/near_duplicate_rate"] == 0
        assert seen[round]["health/concepts"] == 5 and seen[round]["health/levels"] == 3
        assert seen[round]["health/low_diversity"] == 0
    for round in (4, 5, 6, 8, 9):
        assert seen[round]["health/distinct_2"] < cfg.min_distinct_2
        assert seen[round]["health/near_duplicate_rate"] > 0.7  # of each other and of earlier rounds (LSH: most)
        assert seen[round]["health/concepts"] == 1 and seen[round]["health/levels"] == 1
        assert seen[round]["health/low_diversity_round"] == 1
    assert seen[7] == {"health/new_problems": 0.0}
    assert [seen[r].get("health/low_diversity_rounds") for r in (4, 5, 6, 8, 9)] == [1, 2, 3, 3, 3]
    assert [r for r in range(1, 10) if warnings[r]] == [6, 8, 9]  # after 3 low rounds, not before
    assert [r for r in range(1, 10) if seen[r].get("health/low_diversity")] == [6, 8, 9]
    assert "low for 3 rounds in a row" in (warnings[6] or "") and "health.min_distinct_2=0.2" in (warnings[6] or "")
    store.close()
