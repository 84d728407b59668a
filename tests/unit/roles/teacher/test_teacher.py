"""The symbolic Teacher: variants aimed at the Solver's reach, exact answers, rejected drafts kept."""

import random

from curriculum.config import ArithmeticWorldConfig, SymbolicTeacherConfig
from curriculum.records import Attempt
from curriculum.roles.teacher import Failure, SymbolicTeacher
from curriculum.worlds.arithmetic import ArithmeticWorld

WORLD = ArithmeticWorld(ArithmeticWorldConfig(families=["add"], max_level=5), seed=0)


def failure(level: int, correct: int, k: int = 8) -> Failure:
    problem = WORLD.sample("add", level, random.Random(level * 100 + correct))
    attempts = tuple(
        Attempt(
            problem_id=problem.id,
            policy_version=0,
            sample_index=i,
            round=1,
            completion="x",
            extracted_answer=None,
            correct=i < correct,
            reward=float(i < correct),
            num_tokens=1,
            created_by="solver",
        )
        for i in range(k)
    )
    return Failure(problem, attempts)


def test_out_of_reach_failures_get_same_size_or_easier_variants_others_harder():
    teacher = SymbolicTeacher(WORLD, SymbolicTeacherConfig(variants_per_failure=2), seed=0)
    unsolved, partly = failure(3, correct=0), failure(3, correct=4)
    result = teacher.teach([unsolved, partly], known_ids=[], round=1)
    levels = {
        f.problem.id: sorted(p.level for p in result.problems if p.parent_id == f.problem.id)
        for f in (unsolved, partly)
    }
    assert levels[unsolved.problem.id] == [2, 3]  # sibling and easier
    assert levels[partly.problem.id] == [3, 4]  # harder and sibling
    assert all(WORLD.check(p) is None and p.source == "teacher" and p.round_created == 1 for p in result.problems)


def test_known_drafts_are_rejected_as_duplicates_and_the_same_round_writes_the_same_problems():
    teacher = SymbolicTeacher(WORLD, SymbolicTeacherConfig(), seed=0)
    first = teacher.teach([failure(2, correct=2)], known_ids=[], round=3)
    again = teacher.teach([failure(2, correct=2)], known_ids=[p.id for p in first.problems], round=3)
    assert again.problems == [] and {r.reason for r in again.rejected} == {"duplicate"}
    assert [p.id for p in teacher.teach([failure(2, correct=2)], known_ids=[], round=3).problems] == [
        p.id for p in first.problems
    ]
