"""Resume machinery without a model: stage commits are all-or-nothing, a new loop picks up after
the last completed stage and ends exactly like an uninterrupted one; RNG and state round-trips;
the Generator's versioned checkpoints; the fault-injection hook."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.proxy import LocalRole
from curriculum.config import Config, from_dict
from curriculum.evaluation import EvalResult
from curriculum.faults import KILL_ENV
from curriculum.records import Attempt
from curriculum.roles.api import Roles
from curriculum.roles.generator import GeneratorRole
from curriculum.roles.solver import GradedAttempts
from curriculum.roles.teacher import SymbolicTeacher
from curriculum.run.loop import STAGES, CoEvolution
from curriculum.run.resume import (
    RoundState,
    capture_rng,
    compare_stores,
    last_state,
    read_finished,
    restore_rng,
)
from curriculum.store import Store
from curriculum.worlds.arithmetic import ArithmeticWorld
from tests.unit.scripted_roles import policy_ref

ROOT = Path(__file__).resolve().parents[3]
CONFIG = from_dict(
    {
        "world": {"families": ["add"], "max_level": 2, "heldout_per_level": 2, "seed_set_size": 4},
        "selection": {"seed_candidates": 8},
        "solver": {"attempts": 4},
        "loop": {"problems_per_round": 4},
        "generator": {"enabled": False},
    }
)


class Crash(Exception):
    """Stands in for a SIGKILL: the stage stops where it is and nothing after it runs."""


class HashSolver:
    """Grades by a hash of (problem, policy version, sample, seed): deterministic and policy-dependent."""

    def __init__(self):
        self.policy_version = 0

    def load_policy(self, policy):
        self.policy_version = 0 if policy is None else policy.version

    def attempt(self, problems, round, seed, progress=False):
        out = []
        for p in problems:
            for i in range(4):
                h = hashlib.sha256(f"{p.id}:{self.policy_version}:{i}:{seed}".encode()).digest()[0]
                out.append(
                    Attempt(
                        problem_id=p.id,
                        policy_version=self.policy_version,
                        sample_index=i,
                        round=round,
                        completion=f"answer: {h}",
                        extracted_answer=str(h),
                        correct=h % 3 == 0,
                        reward=float(h % 3 == 0),
                        num_tokens=3,
                    )
                )
        return GradedAttempts(out)

    def evaluate(self, problems, max_new_tokens, batch_size):
        return EvalResult()


class CountingLearner:
    """Its state is the number of updates; publish/restore write and read it like an adapter."""

    def __init__(self, crash_at_round: int | None = None):
        self.updates, self.crash_at_round = 0, crash_at_round

    def learn(self, batch):
        from curriculum.training.batch import LearnOutcome

        self.updates += 1
        if batch.round == self.crash_at_round:
            raise Crash("killed during the learner update")
        return LearnOutcome(metrics={"updates": float(self.updates)})

    def publish(self, version):
        return policy_ref(version, {"state.json": json.dumps({"updates": self.updates}).encode()})

    def restore(self, checkpoint):
        self.updates = json.loads(checkpoint.files.files["state.json"])["updates"]
        return self.updates


def make_loop(run_dir: Path, store: Store, crash_learner_at: int | None = None) -> CoEvolution:
    world = ArithmeticWorld(CONFIG.world, seed=0)
    roles = Roles(
        store=LocalRole(store),
        solvers=[LocalRole(HashSolver())],
        teacher=LocalRole(SymbolicTeacher(world, CONFIG.teacher, seed=0)),
        learner=LocalRole(CountingLearner(crash_learner_at)),
    )
    return CoEvolution(CONFIG, roles, world, run_dir, prompt=lambda q: q + "\n")


def uninterrupted(run_dir: Path) -> list:
    with Store(run_dir / "store.duckdb") as store:
        loop = make_loop(run_dir, store)
        loop.prepare_seeds()
        return [loop.run_round(1).metrics, loop.run_round(2).metrics]


def test_a_round_crashed_in_learn_resumes_after_attempt_and_matches(tmp_path):
    reference = uninterrupted(tmp_path / "reference")
    run_dir = tmp_path / "crashed"
    with Store(run_dir / "store.duckdb") as store:
        loop = make_loop(run_dir, store, crash_learner_at=2)
        loop.prepare_seeds()
        loop.run_round(1)
        with pytest.raises(Crash):
            loop.run_round(2)
        done = [(r.round, r.stage) for r in store.stage_records()]
        assert done[-2:] == [(2, "select"), (2, "attempt")]  # learn never committed
        # what resume and the runner read: the newest round's records, and each round's last
        assert [(r.round, r.stage) for r in store.stage_records(last_round=True)] == done[-2:]
        assert [(r.round, r.stage) for r in store.stage_records(stages=("seed", "checkpoint"))] == [
            (0, "seed"),
            (1, "checkpoint"),
        ]
        [whole] = [RoundState.from_json(r.state) for r in store.stage_records(stages=("checkpoint",))]
        finished = read_finished(LocalRole(store), logged={0, 1})
        assert finished.rounds == {0, 1} and sorted(finished.states) == [0, 1]  # the seeds' and the newest
        brief = finished.states[1]
        assert (brief.problem_ids, brief.rng) == ([], None) and whole.problem_ids and whole.rng  # the bulk, left out
        assert replace(brief, problem_ids=whole.problem_ids, rng=whole.rng) == whole
        assert finished.worst_drops == {}  # this loop has no base evaluation: no drops
        assert store.counts()["policies"] == 1  # nor its PolicyVersion record

        fresh = make_loop(run_dir, store)  # a new process: roles rebuilt from scratch
        state = fresh.resume()
        assert (state.round, state.done, state.policy_version) == (2, ["select", "attempt"], 1)
        assert fresh.roles.learner.target.updates == 1  # restored from policy_v0001
        assert fresh.roles.solvers[0].target.policy_version == 1
        report = fresh.run_round(2, state)
    assert {k: v for k, v in report.metrics.items() if "seconds" not in k} == {
        k: v for k, v in reference[1].items() if "seconds" not in k
    }
    comparison = compare_stores(tmp_path / "reference/store.duckdb", run_dir / "store.duckdb")
    assert comparison.equal, comparison.details[:5]
    assert comparison.compared > 50


def test_a_stage_that_fails_commits_none_of_its_writes(tmp_path):
    with Store(tmp_path / "store.duckdb") as store:
        loop = make_loop(tmp_path, store)
        loop.prepare_seeds()
        before = store.counts()
        state = RoundState(round=1, start_version=0, policy_version=0)
        with pytest.raises(Crash):
            with loop._stage("attempt", state) as tx:
                tx.append(loop.attempt(store.problems(), 1, state))
                raise Crash
        assert store.counts() == before and state.done == []


def test_a_finished_run_resumes_to_nothing_left_to_do(tmp_path):
    uninterrupted(tmp_path)
    with Store(tmp_path / "store.duckdb") as store:
        state = make_loop(tmp_path, store).resume()
    assert (state.round, state.done) == (2, list(STAGES))
    assert json.loads((tmp_path / "checkpoints/LATEST.json").read_text())["policy_version"] == 2


def test_round_state_json_round_trip_drops_the_in_memory_copies():
    state = RoundState(
        round=3,
        start_version=2,
        policy_version=3,
        generator_version=1,
        done=["select"],
        problem_ids=["p1"],
        metrics={"a": 1.5},
        evaluation={"cells": []},
        rng=capture_rng(),
    )
    state.problems = ["not saved"]
    back = RoundState.from_json(state.to_json())
    assert back == state and back.problems is None
    assert last_state([]) is None
    later = RoundState(round=3, start_version=2, policy_version=3, done=["select", "attempt"])
    assert last_state([later.record("attempt"), state.record("select")]).done == ["select", "attempt"]


def test_rng_states_are_captured_and_restored():
    state = capture_rng()
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.random(), np.random.rand(), torch.rand(1)  # move on
    restore_rng(json.loads(json.dumps(state)))  # through JSON, as in the store
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_generator_checkpoints_travel_to_the_driver_and_back(tmp_path, monkeypatch):
    from curriculum.config import GeneratorConfig, TinyModelConfig
    from curriculum.roles.generator import Generator

    def train(self, examples):  # stands in for weighted SFT: new weights, next version
        with torch.no_grad():
            for p in self.model.parameters():
                p.add_(0.01)
        self.version += 1
        return {"version": float(self.version)}

    monkeypatch.setattr(Generator, "train", train)

    config = Config.model_validate(
        {
            "model": {
                "tiny": TinyModelConfig(
                    hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=32
                ).model_dump()
            },
            "generator": GeneratorConfig(epochs=1, batch_size=2, max_new_tokens=8).model_dump(),
        }
    )
    world = ArithmeticWorld(config.world, seed=0)
    parent = world.problem_from_question("7+8=?", source="seed")
    child = world.problem_from_question("17+28=?", source="teacher", parent_id=parent.id)
    role = GeneratorRole(config, tmp_path / "node-a")
    untrained = {k: v.clone() for k, v in role.generator.model.state_dict().items()}
    weights, checkpoints = [], []
    for _ in range(3):
        _, checkpoint = role.train([(parent, child, 0.5)] * 2)
        checkpoints.append(checkpoint)
        weights.append({k: v.clone() for k, v in role.generator.model.state_dict().items()})
    assert [p.name for p in (tmp_path / "node-a").glob("v*")] == ["v0003"]  # the driver keeps the versions
    other = GeneratorRole(config, tmp_path / "node-b")  # a restarted role, on another node: untrained
    assert other.version == 0
    assert other.restore(2, checkpoints[1]) == 2
    assert all(torch.equal(v, weights[1][k]) for k, v in other.generator.model.state_dict().items())
    assert other.restore(0) == 0
    assert all(torch.equal(v, untrained[k]) for k, v in other.generator.model.state_dict().items())
    with pytest.raises(ValueError, match="no Generator checkpoint of version 1"):
        other.restore(1)
    with pytest.raises(ValueError, match="sent as version 1 holds version 3"):
        other.restore(1, checkpoints[2])


@pytest.mark.parametrize(
    "wanted, killed",
    [
        ("commit:learn@2", True),
        ("commit:learn@3", False),
        ("commit:learn", True),
        ("stage:learn@2", False),
        ("", False),
    ],
)
def test_kill_point_kills_only_where_asked(wanted, killed):
    code = "from curriculum.faults import kill_point; kill_point('commit:learn', 2); print('alive')"
    env = {**os.environ, KILL_ENV: wanted}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert (result.returncode == -9) is killed
    assert ("alive" in result.stdout) is not killed
