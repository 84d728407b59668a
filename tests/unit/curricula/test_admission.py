"""Hostile Teacher and Generator drafts: rejected with a stored reason, counted per reason in
the round's metrics, and nothing a model writes can break a store write."""

from __future__ import annotations

import pytest
from scripted_roles import NoOpLearner, WrongSolver

from agents.proxy import LocalRole
from curriculum.config import from_dict
from curriculum.curricula import admission
from curriculum.records import Problem
from curriculum.roles.api import Roles
from curriculum.roles.teacher import TeachingResult
from curriculum.run.loop import CoEvolution
from curriculum.store import Store
from curriculum.worlds.arithmetic import ArithmeticWorld

CONFIG = from_dict(
    {
        "world": {"families": ["add"], "max_level": 2, "heldout_per_level": 2, "seed_set_size": 4},
        "solver": {"attempts": 4},
        "loop": {"problems_per_round": 4},
        "generator": {"warmup_rounds": 0, "proposals_per_round": 8},
        "decontamination": {"enabled": False},  # on, it names a held-out copy "contaminated" first (test_decontam)
    }
)
WORLD = ArithmeticWorld(CONFIG.world, seed=0)


def draft(question: str, answer: str = "86", source: str = "teacher", **kw) -> Problem:
    return Problem(
        question=question, answer=answer, source=source, parent_id="p0", round_created=1, created_by=source, **kw
    )


def hostile_drafts(source: str, stored: Problem) -> list[Problem]:
    """One draft per way a model can go wrong, plus one good draft."""
    heldout = WORLD.heldout()[0]
    return [
        draft("61+25=?", source=source),  # good
        draft("   ", source=source),  # empty
        draft("1+1=?", answer="", source=source),  # no answer
        draft("9" * 1_000_000 + "+1=?", answer="1", source=source),  # 1 MB question
        draft("2+2=?", answer="4\ud800", source=source),  # lone surrogate: not UTF-8, no store could hold it
        draft("12+30=?\x00\x07", answer="42", source=source),  # control characters
        draft("import os; os.system('rm -rf /')", answer="0", source=source),  # code, unsolvable
        draft(stored.question, answer=stored.answer, source=source),  # already in the store
        draft(heldout.question, answer=heldout.answer, source=source),  # an evaluation problem
        draft("40+2=?", answer="41", source=source),  # wrong answer
        draft("61+25=?  ", source=source),  # the good one again (same normalised question)
    ]


EXPECTED = [
    "empty",
    "empty",
    "too_long",
    "unprintable",
    "unprintable",
    "unconfirmed",
    "duplicate",
    "eval_duplicate",
    "unconfirmed",
    "duplicate",
]


def test_screen_keeps_the_good_draft_and_names_each_reason():
    stored = WORLD.seed_problems()[0]
    accepted, rejected = admission.screen(
        hostile_drafts("teacher", stored), {stored.id}, {p.id for p in WORLD.heldout()}, WORLD, "teacher", round=1
    )
    assert [p.question for p in accepted] == ["61+25=?"]
    assert [d.reason for d in rejected] == EXPECTED
    assert all(len(d.text) <= admission.STORED_TEXT_CHARS + 3 for d in rejected)
    assert all(d.text.encode("utf-8") for d in rejected)  # storable
    assert "the oracle's answer is 42" in rejected[-2].detail


def test_model_voted_answers_are_left_to_the_label_audit():
    wrong_but_voted = draft("33+44=?", answer="78", answer_source="model")
    accepted, rejected = admission.screen([wrong_but_voted], set(), set(), WORLD, "teacher", round=1)
    assert accepted == [wrong_but_voted] and rejected == []


def test_rejection_metrics_count_every_reason():
    _, rejected = admission.screen(
        hostile_drafts("generator", WORLD.seed_problems()[0]),
        {WORLD.seed_problems()[0].id},
        {p.id for p in WORLD.heldout()},
        WORLD,
        "generator",
        round=1,
    )
    metrics = admission.rejection_metrics(rejected, "generator")
    assert metrics["generator/rejected/unprintable"] == 2 and metrics["generator/rejected/too_long"] == 1
    assert metrics["generator/rejected/eval_duplicate"] == 1 and metrics["generator/rejected/duplicate"] == 2
    assert sum(metrics.values()) == len(EXPECTED)


class HostileTeacher:
    def __init__(self, stored):
        self.stored = stored

    def teach(self, failures, known_ids, round):
        return TeachingResult(problems=hostile_drafts("teacher", self.stored))


class HostileGenerator:
    def __init__(self, stored):
        self.stored = stored

    def train(self, examples):
        return {"examples": float(len(examples)), "version": 1.0}, None

    def propose(self, parents, n, round):
        drafts = [
            d.model_copy(
                update={
                    "question": d.question.replace("61+25", "50+21"),
                    "answer": "71" if d.question.startswith("61+25") else d.answer,
                }
            )
            for d in hostile_drafts("generator", self.stored)
        ]
        return [Problem.model_validate({**d.model_dump(), "id": ""}) for d in drafts], []


@pytest.fixture
def hostile_round(tmp_path):
    store = Store(tmp_path / "store.duckdb")
    seeds = WORLD.seed_problems()
    store.append(seeds)
    roles = Roles(
        store=LocalRole(store),
        solvers=[LocalRole(WrongSolver())],
        teacher=LocalRole(HostileTeacher(seeds[0])),
        learner=LocalRole(NoOpLearner()),
        generator=LocalRole(HostileGenerator(seeds[0])),
    )
    loop = CoEvolution(CONFIG, roles, WORLD, tmp_path / "run", prompt=lambda q: q + "\n")
    report = loop.run_round(1)
    yield report, store
    store.close()


def test_a_round_with_hostile_drafts_completes_and_stores_every_rejection(hostile_round):
    report, store = hostile_round
    stored = {row[0] for row in store.con.execute("SELECT question FROM problems WHERE round_created = 1").fetchall()}
    assert stored == {"61+25=?", "50+21=?"}
    for source in ("teacher", "generator"):
        reasons = sorted(
            r for (r,) in store.con.execute("SELECT reason FROM rejected WHERE source = ?", [source]).fetchall()
        )
        # the two "empty" drafts and the two copies of the good one differ in text: stored apart
        assert reasons == sorted(EXPECTED), source
        assert report.metrics[f"{source}/rejected/unprintable"] == 2
        assert report.metrics[f"{source}/rejected/too_long"] == 1
        assert report.metrics[f"{source}/rejected"] == len(EXPECTED)
    longest = store.con.execute("SELECT max(length(text)) FROM rejected").fetchone()[0]
    assert longest <= admission.STORED_TEXT_CHARS + 3
