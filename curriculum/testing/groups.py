"""Graded groups for tests of the learners: a problem and its attempts, right or wrong as asked."""

from __future__ import annotations

from curriculum.records import Attempt, Problem
from curriculum.training.batch import Group


def graded_group(i: int, outcomes: str) -> Group:
    """Problem i+1=? graded: outcomes like "RWWR", attempt j right (R) or wrong (W, each wrong
    answer different)."""
    problem = Problem(
        question=f"{i}+1=?", answer=str(i + 1), solution=f"{i}+1+0={i + 1}\nanswer: {i + 1}", source="seed"
    )
    completions = [f"answer: {i + 1 if o == 'R' else i + 2 + j}" for j, o in enumerate(outcomes)]
    attempts = tuple(
        Attempt(
            problem_id=problem.id,
            policy_version=0,
            sample_index=j,
            round=1,
            completion=completion,
            extracted_answer=None,
            correct=o == "R",
            reward=float(o == "R"),
            num_tokens=len(completion) + 1,
        )
        for j, (o, completion) in enumerate(zip(outcomes, completions, strict=True))
    )
    return Group(problem, attempts, f"{i}+1=?\n")
