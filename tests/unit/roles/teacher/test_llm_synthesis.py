"""SwS synthesis with the Teacher's model (roles/teacher/llm_synthesis.py) over scripted chat models:
concepts per weak problem, questions from concept combinations and the parent's difficulty,
majority-vote labels; bad replies end as rejections with reasons."""

import json

import pytest
from llm_fakes import ByQuestion, ByStep, boxed, llm_config, llm_teacher

from curriculum.curricula.synthesis import Target
from curriculum.records import Problem, problem_id
from curriculum.verify import Verifier

ADD = Problem(question="What is 17 + 25?", answer="42", source="seed", family="add", level=2, concepts=["add.carry"])
SUB = Problem(question="What is 52 - 17?", answer="35", source="seed", family="sub", level=3, concepts=["sub.borrow"])
ADD_2 = Problem(question="What is 38 + 45?", answer="83", source="seed", family="add", level=2, concepts=["add.carry"])


@pytest.fixture(scope="module")
def verifier():
    with Verifier() as v:
        yield v


def test_concepts_are_combined_per_category_and_drafts_labelled_by_majority(verifier):
    config = llm_config()
    config = config.model_copy(
        update={
            "synthesis": config.synthesis.model_copy(
                update={"enabled": True, "kind": "llm", "concepts_per_question": 2}
            )
        }
    )
    writer = ByStep(
        responses=["unused"],
        concepts={
            ADD.question: json.dumps({"concepts": ["carrying", "two-digit addition"]}),
            ADD_2.question: json.dumps({"concepts": ["carrying", "place value"]}),
            SUB.question: "no JSON here",
        },  # concept extraction of SUB fails: its drafts use the category
        questions=[
            json.dumps({"question": f"Q{i}: what is {10 + i} + {20 + i}?", "rationale": "mix"}) for i in range(3)
        ],
    )
    labeller = ByQuestion(
        responses=[],
        answers={
            "Q0:": boxed(*["30"] * 8),
            "Q1:": boxed(*["32"] * 3, *["31"] * 5),
            "Q2:": boxed("1", "2", "3", "4", "5", "6", "7", "8"),
        },
    )
    teacher = llm_teacher(config, writer, labeller, verifier, synthesis=True)
    targets = [Target("add.carry", ADD), Target("add.carry", ADD_2), Target("sub.borrow", SUB)]
    drafts = teacher.synthesize(targets, [], round=2, seed=7)

    by_question = {p.question.split(":")[0]: p for p in drafts.problems}
    assert sorted(by_question) == ["Q0", "Q1"]
    assert all(p.source == "synthesis" and p.answer_source == "model" for p in drafts.problems)
    assert by_question["Q1"].answer == "31" and by_question["Q1"].vote_share == 0.625
    combos = {p.parent_id: p.concepts for p in drafts.problems}
    for problem in drafts.problems:
        assert problem.level == (2 if problem.parent_id != SUB.id else 3)
    assert sorted(r.reason for r in drafts.rejected) == ["no_consensus", "unparseable"]
    assert next(r.parent_id for r in drafts.rejected if r.reason == "unparseable") == SUB.id
    # the add drafts combine their parent's first concept with another of the category's
    add_concepts = [c for pid, c in combos.items() if pid in (ADD.id, ADD_2.id)]
    assert all(c[0] == "carrying" and c[1] in ("two-digit addition", "place value") for c in add_concepts)
    nodes = sorted({c.node for c in drafts.calls})
    assert nodes == ["concepts", "label", "question"]
    assert sum(c.node == "concepts" for c in drafts.calls) == 2 + 3  # SUB's extraction was tried 3 times
    question_calls = [c for c in drafts.calls if c.node == "question"]
    assert len(question_calls) == 3 and all(len(c.drafts) == 1 for c in question_calls)
    assert {problem_id(p.question) for p in drafts.problems} <= {d for c in question_calls for d in c.drafts}
    sub_prompt = next(c.prompt for c in question_calls if c.parent_id == SUB.id)
    assert "sub.borrow" in sub_prompt and "Difficulty: 3" in sub_prompt
