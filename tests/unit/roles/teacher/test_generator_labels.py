"""The Generator's drafts on a world without an oracle are labelled by the LLM Teacher's labeller and
vote (roles/teacher/llm_labels.py): the majority's answer with its vote share, `no_consensus` below
`teacher.labels.min_agreement`, copies rejected before a label is paid for; and the vote on problems
with a reference answer is compared with it."""

import pytest
from llm_fakes import ByQuestion, Scripted, boxed, llm_config, llm_teacher

from curriculum.records import Problem, problem_id
from curriculum.verify import Verifier

PARENT = Problem(question="Ann has 5 apples and buys 7 more. How many?", answer="12", source="seed")
PARENT = PARENT.model_copy(update={"answer_source": "dataset", "family": "gsm8k_train"})
OTHER = Problem(
    question="A box holds 6 pens. How many pens are in 3 boxes?",
    answer="18",
    source="seed",
    answer_source="dataset",
)


def draft(question: str, parent: Problem = PARENT) -> Problem:
    return Problem(
        question=question,
        answer="",
        source="generator",
        parent_id=parent.id,
        family=parent.family,
        round_created=2,
        created_by="generator",
        model_version=1,
        answer_source="model",
    )


LABELLER = {
    "Ben has 4 cats": boxed(*["9"] * 8),  # unanimous
    "Cal has 3 dogs": boxed(*["6"] * 4 + ["5", "4", "3", "2"]),  # 4 of 8: just enough
    "Dee has 2 owls": boxed(*["8"] * 3 + ["7"] * 3 + ["1"] * 2),  # 3 of 8, tied: no label
    "Eve has 9 rats": boxed(*["6"] * 3 + ["1", "2", "3", "4", "5"]),  # 3 of 8: below min_agreement
    "Ann has 5 apples": boxed(*["12"] * 6 + ["11"] * 2),  # a reference problem the labeller gets right
    "A box holds 6 pens": boxed(*["17"] * 5 + ["18"] * 3),  # one it gets wrong
}


@pytest.fixture
def labelled():
    config = llm_config()
    labeller = ByQuestion(responses=["no answer here"], answers=LABELLER)
    drafts = [
        draft("Ben has 4 cats and gets 5 more. How many cats?"),
        draft("Cal has 3 dogs and gets 3 more. How many dogs?"),
        draft("Dee has 2 owls and gets 6 more. How many owls?"),
        draft("Eve has 9 rats and loses 3. How many rats?", OTHER),
        draft(PARENT.question),  # a copy of a known problem
        draft("Ben has 4 cats and gets 5 more. How many cats?"),  # proposed twice
        draft("   "),
    ]
    with Verifier() as verifier:
        teacher = llm_teacher(config, Scripted(responses=["unused"]), labeller, verifier)
        result = teacher.label(drafts, {PARENT.id}, 2, references=[PARENT, OTHER])
    return config, result


def test_drafts_get_the_majority_answer_and_its_vote_share(labelled):
    _, result = labelled
    assert [(p.question.split(" has")[0], p.answer, p.vote_share) for p in result.problems] == [
        ("Ben", "9", 1.0),
        ("Cal", "6", 0.5),
    ]
    for problem in result.problems:
        assert problem.answer_source == "model" and problem.source == "generator" and problem.model_version == 1
        assert problem.parent_id == PARENT.id and "\\boxed{" in problem.solution  # a solution that voted for it


def test_below_min_agreement_or_tied_is_rejected_with_the_votes(labelled):
    _, result = labelled
    reasons = {r.text.split(" has")[0].strip(): (r.reason, r.detail) for r in result.rejected}
    assert reasons["Dee"] == ("no_consensus", "votes 8 x3, 7 x3, 1 x2 of 8 (tied)")
    assert reasons["Eve"] == ("no_consensus", "votes 6 x3, 1 x1, 2 x1, 3 x1, 4 x1, 1 more of 8 (needs 4)")
    assert reasons["Ann"] == ("duplicate", "already known")
    assert ("duplicate", "proposed twice this round") in {(r.reason, r.detail) for r in result.rejected}
    assert reasons[""][0] == "empty"
    assert all(r.source == "generator" and r.round == 2 for r in result.rejected)


def test_every_label_call_is_audited_and_linked_to_its_draft(labelled):
    config, result = labelled
    samples = config.teacher.labels.samples
    no_label = [problem_id(r.text) for r in result.rejected if r.reason == "no_consensus"]
    voted = [p.id for p in result.problems] + no_label
    assert len(voted) == 4
    assert len(result.calls) == samples * (len(voted) + 2)  # and the 2 references; none for copies or the empty one
    assert {(c.source, c.node, c.round) for c in result.calls} == {("generator", "label", 2)}
    for draft_id in [*voted, PARENT.id, OTHER.id]:
        assert sum(draft_id in c.drafts for c in result.calls) == samples


def test_the_vote_on_reference_problems_is_compared_with_their_answers(labelled):
    _, result = labelled
    checks = {c.problem_id: (c.voted, c.agreed) for c in result.checks}
    assert checks == {PARENT.id: ("12", True), OTHER.id: ("17", False)}


def test_the_symbolic_teacher_cannot_label():
    from curriculum.errors import CurriculumError
    from curriculum.roles.teacher.base import Teacher

    class NoModel(Teacher):
        def teach(self, failures, known_ids, round):
            raise AssertionError

    with pytest.raises(CurriculumError, match="set teacher.kind=llm"):
        NoModel().label([draft("Ben has 4 cats?")], set(), 1)
