"""One round of the loop with scripted roles: decontamination and label quality at work."""

import json

import pytest
from scripted_roles import NoOpLearner, WrongSolver

from agents.proxy import LocalRole
from curriculum.config import from_dict
from curriculum.records import Problem
from curriculum.roles.api import Roles
from curriculum.roles.teacher import TeachingResult
from curriculum.run.loop import CoEvolution
from curriculum.store import Store
from curriculum.worlds.arithmetic import ArithmeticWorld

BENCHMARK_QUESTION = (
    "Tom has 12 apples and buys 30 more apples at the market on Sunday. How many apples does Tom have now?"
)


class ScriptedTeacher:
    """Writes, for the first failure: a clean child, a copy of a benchmark question and two
    children whose answers a model voted (one right, one wrong)."""

    def teach(self, failures, known_ids, round):
        parent = failures[0].problem.id

        def child(question, answer, by="oracle"):
            return Problem(
                question=question,
                answer=answer,
                source="teacher",
                parent_id=parent,
                round_created=round,
                created_by="teacher",
                answer_source=by,
            )

        return TeachingResult(
            problems=[
                child("61+25=?", "86"),
                child(BENCHMARK_QUESTION.lower(), "42"),
                child("70+18=?", "88", by="model"),
                child("33+44=?", "78", by="model"),
            ]
        )


class ScriptedGenerator:
    def train(self, examples):
        return {"examples": float(len(examples))}, None

    def propose(self, parents, n, round):
        copy = Problem(
            question=BENCHMARK_QUESTION + "  ",
            answer="42",
            source="generator",
            parent_id=parents[0].id,
            round_created=round,
            created_by="generator",
        )
        fine = Problem(
            question="50+21=?",
            answer="71",
            source="generator",
            parent_id=parents[0].id,
            round_created=round,
            created_by="generator",
        )
        return [copy, fine], []


@pytest.fixture
def round_one(tmp_path):
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"question": BENCHMARK_QUESTION, "answer": "42"}) + "\n")
    config = from_dict(
        {
            "world": {"families": ["add"], "max_level": 2, "heldout_per_level": 2, "seed_set_size": 4},
            "solver": {"attempts": 4},
            "loop": {"problems_per_round": 4},
            "generator": {"warmup_rounds": 0, "proposals_per_round": 2},
            "data_root": str(tmp_path),
            "datasets": {"bench": {"path": "bench.jsonl"}},
            "decontamination": {"eval_sets": ["bench"]},
        }
    )
    world = ArithmeticWorld(config.world, seed=0)
    store = Store(tmp_path / "store.duckdb")
    store.append(world.seed_problems())
    roles = Roles(
        store=LocalRole(store),
        solvers=[LocalRole(WrongSolver())],
        teacher=LocalRole(ScriptedTeacher()),
        learner=LocalRole(NoOpLearner()),
        generator=LocalRole(ScriptedGenerator()),
    )
    loop = CoEvolution(config, roles, world, tmp_path / "run", prompt=lambda q: q + "\n")
    report = loop.run_round(1)
    yield report, store
    store.close()


def test_benchmark_copies_are_rejected_as_contaminated(round_one):
    report, store = round_one
    rejected = store.con.execute("SELECT source, reason, text FROM rejected ORDER BY source").fetchall()
    assert [(s, r) for s, r, _ in rejected] == [("generator", "contaminated"), ("teacher", "contaminated")]
    stored = {row[0] for row in store.con.execute("SELECT question FROM problems").fetchall()}
    assert not any("apples" in q for q in stored)
    assert {"61+25=?", "50+21=?"} <= stored
    assert report.metrics["teacher/contaminated"] == 1 and report.metrics["generator/contaminated"] == 1
    assert report.metrics["teacher/accepted"] == 3 and report.metrics["generator/accepted"] == 1


def test_label_quality_of_model_labels_is_logged_per_round(round_one):
    report, _ = round_one
    assert report.metrics["labels/model_labelled"] == 2
    assert report.metrics["labels/checked"] == 2
    assert report.metrics["labels/agreement"] == 0.5  # 70+18=88 is right, 33+44=78 is not
