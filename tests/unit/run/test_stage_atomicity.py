"""A stage's store writes are committed once, with its stage record: its own reads see them
uncommitted (`Store.read_with`), and a stage killed after such a read and before its commit
leaves none of itself in the store."""

from __future__ import annotations

import pytest
from scripted_roles import NoOpLearner

from agents.proxy import LocalRole
from curriculum.config import from_dict
from curriculum.evaluation import EvalResult
from curriculum.records import Attempt, Problem, StageRecord
from curriculum.roles.api import Roles
from curriculum.roles.solver import GradedAttempts
from curriculum.roles.teacher import SymbolicTeacher
from curriculum.run import loop as loop_module
from curriculum.run.loop import CoEvolution
from curriculum.store import Read, Store, StoreError
from curriculum.store.queries import StoreQueries
from curriculum.worlds.arithmetic import ArithmeticWorld

CONFIG = from_dict(
    {
        "world": {"families": ["add"], "max_level": 2, "heldout_per_level": 2, "seed_set_size": 4},
        "selection": {"seed_candidates": 8},
        "solver": {"attempts": 4},
        "loop": {"problems_per_round": 4},
        "generator": {"warmup_rounds": 0, "proposals_per_round": 2},
    }
)


class HalfRightSolver:
    def attempt(self, problems, round, seed, progress=False):
        return GradedAttempts(
            [
                Attempt(
                    problem_id=p.id,
                    policy_version=0,
                    sample_index=i,
                    round=round,
                    completion=f"answer: {i}",
                    extracted_answer=str(i),
                    correct=i % 2 == 0,
                    reward=float(i % 2 == 0),
                    num_tokens=3,
                )
                for p in problems
                for i in range(4)
            ]
        )

    def load_policy(self, policy):
        pass

    def evaluate(self, problems, max_new_tokens, batch_size):
        return EvalResult()


class ModelLabellingGenerator:
    """Proposes one problem whose answer a model voted: the distil stage's label-quality read
    (after the stage stored it) counts it only if the stage reads its own held writes."""

    def train(self, examples):
        return {"examples": float(len(examples)), "version": 1.0}, None

    def propose(self, parents, n, round):
        return [
            Problem(
                question="31+25=?",
                answer="56",
                source="generator",
                parent_id=parents[0].id,
                round_created=round,
                created_by="generator",
                answer_source="model",
            )
        ], []


def make_loop(tmp_path):
    world = ArithmeticWorld(CONFIG.world, seed=0)
    store = Store(tmp_path / "store.duckdb")
    roles = Roles(
        store=LocalRole(store),
        solvers=[LocalRole(HalfRightSolver())],
        teacher=LocalRole(SymbolicTeacher(world, CONFIG.teacher, seed=0)),
        learner=LocalRole(NoOpLearner()),
        generator=LocalRole(ModelLabellingGenerator()),
    )
    return CoEvolution(CONFIG, roles, world, tmp_path / "run", prompt=lambda q: q + "\n"), store


def test_a_stage_reads_its_own_writes_and_a_kill_before_its_commit_leaves_none_of_it(tmp_path, monkeypatch):
    loop, store = make_loop(tmp_path)
    loop.prepare_seeds()
    reads = []
    real_read_with = store.read_with

    def read_with(held, read):
        reads.append((read.query.__name__, len(held)))
        return real_read_with(held, read)

    class Killed(Exception):
        pass

    def kill_point(point, round=None):
        if point == "commit:distil":
            raise Killed(point)

    monkeypatch.setattr(store, "read_with", read_with)
    monkeypatch.setattr(loop_module, "kill_point", kill_point)
    with pytest.raises(Killed):
        loop.run_round(1)
    # The distil stage stored the Generator's problem, then read the round's problems with it
    # held (label quality), then died before its commit: nothing of it is in the store.
    assert store.problems(source="generator") == []
    assert store.con.execute("SELECT count(*) FROM rejected WHERE source = 'generator'").fetchone()[0] == 0
    assert ("problems", 1) in reads
    stages = [(r.round, r.stage) for r in store.stage_records()]
    assert stages == [(0, "seed"), (1, "select"), (1, "attempt"), (1, "learn"), (1, "teach"), (1, "synthesize")]
    assert store.problems(source="teacher")  # the stages before it are committed
    store.close()


def test_the_stage_saw_the_write_it_held(tmp_path):
    loop, store = make_loop(tmp_path)
    loop.prepare_seeds()
    report = loop.run_round(1)
    assert report.metrics["generator/accepted"] == 1
    assert report.metrics["labels/model_labelled"] == 1  # counted by a read inside the stage
    assert [p.question for p in store.problems(source="generator")] == ["31+25=?"]
    store.close()


def test_read_with_sees_held_records_and_leaves_the_store_as_it_was(tmp_path):
    world = ArithmeticWorld(CONFIG.world, seed=0)
    seeds = world.seed_problems()
    with Store(tmp_path / "store.duckdb") as store:
        store.append(seeds[:2])
        held = [seeds[1], seeds[2], StageRecord(round=1, stage="select", state="{}")]  # one already stored
        assert {p.id for p in store.read_with(held, Read.of(StoreQueries.problems))} == {p.id for p in seeds[:3]}
        snapshot = store.read_with(held, Read(Store.export_parquet, (str(tmp_path / "snap"),)))
        import pyarrow.parquet as pq

        assert pq.read_table(snapshot / "problems.parquet").num_rows == 3
        assert pq.read_table(snapshot / "stages.parquet").num_rows == 1
        assert {p.id for p in store.problems()} == {p.id for p in seeds[:2]}
        assert store.stage_records() == []
        assert store.append(seeds[:3]) == 1  # the key filter still knows only what was committed
        with pytest.raises(StoreError, match="Store.append is not a read"):
            store.read_with(held, Read(Store.append, (held,)))
