"""Synthesis: drafts aimed at weak (or uniformly drawn) concepts, screened by solve rate."""

import random
from collections import Counter

from curriculum.config import ArithmeticWorldConfig, SynthesisConfig
from curriculum.curricula.synthesis import Target, draft, plan, screen
from curriculum.curricula.weakness import WeaknessReport, concept_of
from curriculum.records import Attempt
from curriculum.worlds.arithmetic import ArithmeticWorld

WORLD = ArithmeticWorld(ArithmeticWorldConfig(families=["add", "sub"], max_level=4), seed=0)


def problem(question):
    return WORLD.problem_from_question(question, source="seed")


CARRY = [problem("47+38=?"), problem("59+26=?")]
BORROW = [problem("52-17=?")]
TRACKED = CARRY + BORROW + [problem("12+34=?"), problem("93-21=?"), problem("68+17=?")]
REPORT = WeaknessReport(
    "weakness",
    CARRY + BORROW,
    {"add.carry": 2 / 3, "add.no_carry": 0.0, "sub.borrow": 1 / 2, "sub.no_borrow": 0.0},
    TRACKED,
)


def test_weakness_plan_spends_the_budget_by_failure_ratio_on_weak_parents():
    targets = plan(SynthesisConfig(enabled=True, budget=7, concepts="weakness"), REPORT, random.Random(0))
    assert Counter(t.concept for t in targets) == {"add.carry": 4, "sub.borrow": 3}  # 7 * (4/7, 3/7)
    assert [t.parent for t in targets if t.concept == "add.carry"] == CARRY * 2  # weak parents in turn
    assert {t.parent.id for t in targets} <= {p.id for p in REPORT.targets}


def test_uniform_plan_draws_concepts_uniformly_from_all_tracked_ones():
    targets = plan(SynthesisConfig(enabled=True, budget=400, concepts="uniform"), REPORT, random.Random(0))
    counts = Counter(t.concept for t in targets)
    assert set(counts) == {"add.carry", "add.no_carry", "sub.borrow", "sub.no_borrow"}
    assert all(70 <= n <= 130 for n in counts.values())  # 100 each expected
    assert all(concept_of(t.parent) == t.concept for t in targets)


def test_drafts_vary_their_parent_and_reject_duplicates():
    rng = random.Random(0)
    targets = [Target("add.carry", CARRY[0]), Target("add.carry", CARRY[0]), Target("sub.borrow", BORROW[0])]
    out = draft(targets, WORLD, ["sibling", "harder"], known_ids=[], round=3, rng=rng)
    assert len(out.problems) == 3 and not out.rejected
    sibling, harder, borrow = out.problems
    assert (sibling.level, concept_of(sibling)) == (2, "add.carry")  # same knobs and concept, new numbers
    assert harder.level == 3  # one more digit
    assert concept_of(borrow) == "sub.borrow"
    for p, parent in zip(out.problems, [CARRY[0], CARRY[0], BORROW[0]]):
        assert (p.source, p.parent_id, p.round_created, p.created_by) == ("synthesis", parent.id, 3, "synthesis")
        assert WORLD.check(p) is None
    again = draft(targets[:1], WORLD, ["sibling"], known_ids=[sibling.id], round=3, rng=random.Random(0))
    assert again.problems == [] and [r.reason for r in again.rejected] == ["duplicate"]
    assert again.rejected[0].source == "synthesis" and again.rejected[0].parent_id == CARRY[0].id


def attempts_at(p, correct, k=4):
    return [
        Attempt(
            problem_id=p.id,
            policy_version=1,
            sample_index=i,
            round=3,
            completion="",
            extracted_answer=None,
            correct=i < correct,
            reward=float(i < correct),
            num_tokens=3,
        )
        for i in range(k)
    ]


def test_screen_keeps_the_band_and_rejects_the_rest_with_the_reason():
    easy, good, hard, unseen = [problem(q) for q in ("11+11=?", "22+33=?", "4444+5678=?", "1+1=?")]
    attempts = attempts_at(easy, 4) + attempts_at(good, 2) + attempts_at(hard, 0)
    out = screen([easy, good, hard, unseen], attempts, 0.25, 0.75, round=3)
    assert out.kept == [good] and out.attempts == attempts_at(good, 2)
    assert [(r.text, r.reason) for r in out.rejected] == [
        ("11+11=?", "too_easy"),
        ("4444+5678=?", "too_hard"),
        ("1+1=?", "not_attempted"),
    ]
    assert out.rejected[0].detail == "solve rate 4/4 outside [0.25, 0.75]"
