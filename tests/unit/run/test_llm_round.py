"""A round of the loop on the arithmetic world with an LLM Teacher whose labeller is scripted to vote
some answers wrong: the round reports exactly that agreement with the oracle, stores every call,
and a vote-share threshold keeps weakly voted problems out of training."""

import json

import pytest
from llm_fakes import ByQuestion, ByStep, Scripted, boxed, llm_config, llm_teacher
from scripted_roles import NoOpLearner, WrongSolver

from agents.proxy import LocalRole
from curriculum.curricula.selection import trusted
from curriculum.roles.api import Roles
from curriculum.run.loop import CoEvolution
from curriculum.store import Store
from curriculum.verify import Verifier
from curriculum.worlds.arithmetic import ArithmeticWorld

DIAGNOSIS = json.dumps({"error": "drops the carry", "concept": "addition"})
# (question, the labeller's answers): right majorities, wrong majorities, and one without a consensus
DRAFTS = [
    ("61+25=?", ["86"] * 8),
    ("70+18=?", ["88"] * 6 + ["87"] * 2),
    ("33+44=?", ["78"] * 5 + ["77"] * 3),  # a wrong majority: 5 of 8 say 78, the oracle says 77
    ("52+16=?", ["68"] * 4 + ["67", "66", "65", "64"]),
    ("27+31=?", ["59"] * 7 + ["58"]),  # wrong again
    ("45+23=?", ["68"] * 8),
    ("14+72=?", ["86"] * 3 + ["85"] * 3 + ["84"] * 2),  # no consensus: rejected, never labelled
    ("36+41=?", ["77"] * 8),
]


@pytest.fixture
def llm_round(tmp_path):
    config = llm_config(max_failures=4)
    config = config.model_copy(update={"generator": config.generator.model_copy(update={"enabled": False})})
    world = ArithmeticWorld(config.world, seed=0)
    writer_replies = []
    for i in range(0, len(DRAFTS), 2):
        writer_replies += [
            DIAGNOSIS,
            json.dumps({"problems": [{"question": q, "rationale": "carry"} for q, _ in DRAFTS[i : i + 2]]}),
        ]
    writer = Scripted(responses=writer_replies)
    labeller = ByQuestion(responses=[], answers={q: boxed(*answers) for q, answers in DRAFTS})
    with Verifier() as verifier, Store(tmp_path / "store.duckdb") as store:
        store.append(world.seed_problems())
        teacher = llm_teacher(config, writer, labeller, verifier)
        roles = Roles(
            store=LocalRole(store),
            solvers=[LocalRole(WrongSolver())],
            teacher=LocalRole(teacher),
            learner=LocalRole(NoOpLearner()),
        )
        loop = CoEvolution(config, roles, world, tmp_path / "run", prompt=lambda q: q + "\n")
        report = loop.run_round(1)
        yield report, store, world


@pytest.fixture
def run_dir(llm_round, tmp_path):
    return tmp_path / "run"  # the round's snapshot is in run/snapshots/ (store/snapshots.py)


def test_agreement_with_the_oracle_is_exactly_what_the_labeller_got_right(llm_round):
    report, store, world = llm_round
    metrics = report.metrics
    assert metrics["teacher/accepted"] == 7 and metrics["teacher/rejected/no_consensus"] == 1
    assert metrics["labels/model_labelled"] == 7 and metrics["labels/checked"] == 7
    assert metrics["labels/agreement"] == pytest.approx(5 / 7)  # 33+44 and 27+31 were voted wrong
    stored = {
        q: (a, share)
        for q, a, share in store.con.execute(
            "SELECT question, answer, vote_share FROM problems WHERE answer_source = 'model'"
        ).fetchall()
    }
    assert stored["33+44=?"] == ("78", 0.625) and world.solve("33+44=?") == "77"
    assert stored["52+16=?"] == ("68", 0.5)


def test_every_call_is_stored_with_the_round_and_linked_to_its_drafts(llm_round):
    report, store, _ = llm_round
    rows = store.con.execute("SELECT node, count(*) FROM calls WHERE round = 1 GROUP BY node ORDER BY node").fetchall()
    assert rows == [("diagnose", 4), ("label", 64), ("write", 4)]
    assert report.metrics["teacher/calls"] == 72 and report.metrics["teacher/call_errors"] == 0
    linked = store.con.execute(
        """SELECT count(DISTINCT p.id) FROM problems p JOIN calls c ON list_contains(c.drafts, p.id)
           WHERE c.node = 'write' AND p.source = 'teacher'"""
    ).fetchone()[0]
    assert linked == 7


def test_a_vote_share_threshold_keeps_weak_labels_out_of_training(llm_round):
    _, store, _ = llm_round
    problems = store.problems(source="teacher")
    kept = {p.question for p in trusted(problems, 0.75)}
    assert kept == {"61+25=?", "70+18=?", "27+31=?", "45+23=?", "36+41=?"}
    assert len(trusted(problems, 0.0)) == 7


def test_inspect_shows_the_calls_the_acceptance_and_the_label_quality(llm_round, run_dir, capsys):
    from curriculum.cli import main
    from curriculum.report.summary import summarize

    summary = summarize(run_dir)
    calls = {(c["source"], c["node"]): (c["calls"], c["errors"]) for c in summary["calls"]}
    assert calls == {("teacher", "diagnose"): (4, 0), ("teacher", "write"): (4, 0), ("teacher", "label"): (64, 0)}
    assert summary["acceptance"]["teacher"] == {
        "accepted": 7,
        "rejected": 1,
        "rate": 7 / 8,
        "reasons": {"no_consensus": 1},
    }
    [quality] = summary["label_quality"]["rounds"]
    assert quality["model_labelled"] == 7 and quality["checked"] == 7 and quality["agreement"] == pytest.approx(5 / 7)
    assert summary["label_quality"]["vote_shares"] == {"0.5": 1, "0.625": 1, "0.75": 1, "0.875": 1, "1": 3}
    assert main(["inspect", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "model calls of the LLM workflows" in out and "label quality" in out and "71" in out  # 5/7 = 71%


def test_lineage_shows_the_call_that_wrote_a_teacher_problem_and_why(llm_round, run_dir, capsys):
    from curriculum.cli import main
    from curriculum.report.lineage import load_lineage

    _, store, _ = llm_round
    [problem] = [p for p in store.problems(source="teacher") if p.question == "33+44=?"]
    lineage, _ = load_lineage(run_dir, problem.id)
    made = lineage.provenance
    assert made.node == "write" and made.template.startswith("teacher_write@") and made.rationale == "carry"
    assert made.diagnosis == {"error": "drops the carry", "concept": "addition"}
    assert made.label_calls == 8 and made.vote_share == 0.625 and made.answer_source == "model"
    assert lineage.ancestors[0].id == problem.parent_id
    assert main(["lineage", str(run_dir), problem.id]) == 0
    out = capsys.readouterr().out
    assert (
        f"written by call {made.call_id}" in out and "rationale: carry" in out and "diagnosis: drops the carry" in out
    )
    seed = load_lineage(run_dir, problem.parent_id)[0]
    assert seed.provenance is None  # a seed was written by nobody


def test_llm_synthesis_writes_labels_and_the_solver_screens(tmp_path):
    """SwS with the Teacher's model (teacher.enabled=false, synthesis.kind=llm): drafts for the failing
    problems' concepts, labelled by vote, screened by the Solver (here too hard: it fails everything)."""
    config = llm_config(enabled=False)
    config = config.model_copy(
        update={
            "generator": config.generator.model_copy(update={"enabled": False}),
            "synthesis": config.synthesis.model_copy(update={"enabled": True, "kind": "llm", "budget": 2}),
            "loop": config.loop.model_copy(update={"problems_per_round": 6}),
        }
    )
    world = ArithmeticWorld(config.world, seed=0)
    writer = ByStep(
        responses=[json.dumps({"concepts": ["carrying"]})],
        questions=[json.dumps({"question": q, "rationale": "mix"}) for q in ("23+48=?", "35+27=?")],
    )
    labeller = ByQuestion(responses=[], answers={"23+48=?": boxed(*["71"] * 8), "35+27=?": boxed(*["62"] * 8)})
    with Verifier() as verifier, Store(tmp_path / "store.duckdb") as store:
        store.append(world.seed_problems())
        roles = Roles(
            store=LocalRole(store),
            solvers=[LocalRole(WrongSolver())],
            teacher=LocalRole(llm_teacher(config, writer, labeller, verifier, synthesis=True)),
            learner=LocalRole(NoOpLearner()),
        )
        report = CoEvolution(config, roles, world, tmp_path / "run", prompt=lambda q: q + "\n").run_round(1)
        rejected = store.con.execute(
            "SELECT text, reason FROM rejected WHERE source = 'synthesis' ORDER BY text"
        ).fetchall()
        nodes = dict(
            store.con.execute("SELECT node, count(*) FROM calls WHERE source = 'synthesis' GROUP BY node").fetchall()
        )
    assert "teacher/calls" not in report.metrics  # the Socratic Teacher is off
    assert report.metrics["synthesis/drafts"] == 2 and report.metrics["synthesis/accepted"] == 0
    assert rejected == [("23+48=?", "too_hard"), ("35+27=?", "too_hard")]  # the Solver solves 0/4
    assert nodes["question"] == 2 and nodes["label"] == 16 and nodes["concepts"] >= 1
    assert report.metrics["synthesis/calls"] == sum(nodes.values())
