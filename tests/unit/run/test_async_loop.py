"""loop.mode=async without a model: round r+1 is selected and sampled with policy v while the Learner
trains on round r; the Learner gets those one-version-old groups; a crash loses nothing committed
and duplicates nothing, and a crash that loses the attempts sampled ahead samples them again."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.proxy import LocalRole
from curriculum.config import from_dict
from curriculum.roles.api import Roles
from curriculum.roles.teacher import SymbolicTeacher
from curriculum.run.loop import CoEvolution
from curriculum.run.resume import compare_stores
from curriculum.store import Store
from curriculum.worlds.arithmetic import ArithmeticWorld
from tests.unit.run.test_resume_state import CONFIG, CountingLearner, Crash, HashSolver

ASYNC = from_dict({**CONFIG.model_dump(), "loop": {**CONFIG.loop.model_dump(), "mode": "async", "rounds": 3}})


class RecordingSolver(HashSolver):
    """Logs each call with the policy version it ran under."""

    def __init__(self, log: list[tuple[str, int, int]]):
        super().__init__()
        self.log = log

    def attempt(self, problems, round, seed, progress=False):
        self.log.append(("attempt", round, self.policy_version))
        return super().attempt(problems, round, seed, progress)

    def load_policy(self, policy):
        super().load_policy(policy)
        self.log.append(("load_policy", -1, self.policy_version))


class RecordingLearner(CountingLearner):
    def __init__(self, log: list[tuple[str, int, int]]):
        super().__init__()
        self.log, self.batches = log, []

    def learn(self, batch):
        self.log.append(("learn", batch.round, batch.policy_version))
        self.batches.append(batch)
        return super().learn(batch)


class CrashingTeacher(SymbolicTeacher):
    def __init__(self, *args, crash_at_round: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.crash_at_round = crash_at_round

    def teach(self, failures, known_ids, round):
        if round == self.crash_at_round:
            raise Crash("killed while teaching")
        return super().teach(failures, known_ids, round)


def make_loop(run_dir: Path, store: Store, log: list, crash_teacher_at: int | None = None) -> CoEvolution:
    world = ArithmeticWorld(ASYNC.world, seed=0)
    roles = Roles(
        store=LocalRole(store),
        solvers=[LocalRole(RecordingSolver(log))],
        teacher=LocalRole(CrashingTeacher(world, ASYNC.teacher, seed=0, crash_at_round=crash_teacher_at)),
        learner=LocalRole(RecordingLearner(log)),
    )
    return CoEvolution(ASYNC, roles, world, run_dir, prompt=lambda q: q + "\n")


def run(loop: CoEvolution, rounds: range) -> list:
    return [loop.run_round(r).metrics for r in rounds]


def test_the_next_round_is_sampled_with_the_policy_before_the_update(tmp_path):
    log: list = []
    with Store(tmp_path / "store.duckdb") as store:
        loop = make_loop(tmp_path, store, log)
        loop.prepare_seeds()
        metrics = run(loop, range(1, 4))
        attempts = {r: {a.policy_version for a in store.round_attempts(r)} for r in (1, 2, 3)}
        selected = [r.state for r in store.stage_records() if r.stage == "select"]
    # Round 1 has no round before it to sample it ahead; round r+1 is sampled with v_r, the version
    # round r's Learner starts from, before the Solver loads v_{r+1}.
    assert attempts == {1: {0}, 2: {0}, 3: {1}}
    learning = [e for e in log if e[0] != "attempt" or e[1] > 0]  # round 0: the seed screening
    assert learning == [
        ("attempt", 1, 0),
        ("learn", 1, 0),
        ("attempt", 2, 0),
        ("load_policy", -1, 1),
        ("learn", 2, 1),
        ("attempt", 3, 1),
        ("load_policy", -1, 2),
        ("learn", 3, 2),
        ("load_policy", -1, 3),
    ]
    assert [m["attempt/policy_lag"] for m in metrics] == [0, 1, 1]
    # The Learner of version 1 trains on groups sampled by version 0: one version old, kept.
    learner = loop.roles.learner.target
    second = learner.batches[1]
    assert second.policy_version == 1 and {second.staleness(g) for g in second.groups} == {1}
    assert len(selected) == 3


def test_a_crash_in_learn_resumes_exactly(tmp_path):
    """Round 2's attempts (sampled ahead with v0) are committed before its learn stage: resume
    reads them back by the version they were sampled with, and the run ends as an uninterrupted one."""
    with Store(tmp_path / "reference/store.duckdb") as store:
        loop = make_loop(tmp_path / "reference", store, [])
        loop.prepare_seeds()
        reference = run(loop, range(1, 4))
    run_dir = tmp_path / "crashed"
    with Store(run_dir / "store.duckdb") as store:
        loop = make_loop(run_dir, store, [])
        loop.roles.learner.target.crash_at_round = 2
        loop.prepare_seeds()
        loop.run_round(1)
        with pytest.raises(Crash):
            loop.run_round(2)
        fresh = make_loop(run_dir, store, [])
        state = fresh.resume()
        assert (state.round, state.done, state.start_version, state.policy_version) == (2, ["select", "attempt"], 0, 1)
        metrics = [fresh.run_round(2, state).metrics, fresh.run_round(3).metrics]
    assert [_steady(m) for m in metrics] == [_steady(m) for m in reference[1:]]
    comparison = compare_stores(tmp_path / "reference/store.duckdb", run_dir / "store.duckdb")
    assert comparison.equal, comparison.details[:5]


def test_a_crash_that_loses_the_attempts_sampled_ahead_samples_them_again(tmp_path):
    """Killed in round 2's teach stage: round 3's attempts, sampled ahead with v1, were never stored.
    On resume nothing committed is lost or changed, nothing is stored twice, and round 3 is selected
    and sampled again with the policy then current (v2)."""
    run_dir = tmp_path / "crashed"
    with Store(run_dir / "store.duckdb") as store:
        loop = make_loop(run_dir, store, [], crash_teacher_at=2)
        loop.prepare_seeds()
        loop.run_round(1)
        with pytest.raises(Crash):
            loop.run_round(2)
        assert loop.ahead is not None and loop.ahead.round == 3  # sampled, in memory only
        assert store.round_attempts(3) == []
        committed = _records(store)

        fresh = make_loop(run_dir, store, [])
        state = fresh.resume()
        assert (state.round, state.done[-1]) == (2, "learn")
        fresh.run_round(2, state)
        fresh.run_round(3)
        assert {a.policy_version for a in store.round_attempts(3)} == {2}
        final = _records(store)
    for table, records in committed.items():
        assert len({r.id for r in final[table]}) == len(final[table]), f"{table}: a record stored twice"
        kept = {r.id: r for r in final[table]}
        assert all(kept.get(r.id) == r for r in records), f"{table}: a committed record lost or changed"
    assert len(final["attempts"]) > len(committed["attempts"])


def _records(store: Store) -> dict[str, list]:
    """Every problem and attempt the store holds (ids repeated if stored twice)."""
    return {
        "problems": store.problems(),
        "attempts": [a for r in range(4) for a in store.round_attempts(r)],
    }


def _steady(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if "seconds" not in k}
