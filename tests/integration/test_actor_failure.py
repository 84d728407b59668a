"""A Solver and a Teacher actor killed mid-round (`ray.kill`) are restarted by Ray, get the
loop's state back (the current policy version) and their call is sent again; the round
completes and the store equals that of a run where nothing died.

The roles are scripted (no model) so the test costs only Ray's start-up, but they run in
real Ray actors placed like a real run's, next to the real Store actor.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from functools import partial

import pytest

ray = pytest.importorskip("ray")
from ray import cloudpickle  # noqa: E402

from agents import cluster  # noqa: E402
from agents import roles as factories
from curriculum.config import from_dict  # noqa: E402
from curriculum.records import Attempt  # noqa: E402
from curriculum.report.evaluation import EvalResult  # noqa: E402
from curriculum.roles.teacher import SymbolicTeacher  # noqa: E402
from curriculum.run.loop import CoEvolution, Roles  # noqa: E402
from curriculum.run.resume import compare_stores  # noqa: E402
from curriculum.run.runner import _restore_on_restart  # noqa: E402
from curriculum.worlds.arithmetic import ArithmeticWorld  # noqa: E402

pytestmark = pytest.mark.integration

SLOW_CALL_S = 2.0  # how long a scripted call takes: the window in which the test kills the actor
CONFIG = from_dict({
    "world": {"families": ["add"], "max_level": 2, "heldout_per_level": 2, "seed_set_size": 4},
    "selection": {"seed_candidates": 8}, "solver": {"attempts": 4}, "loop": {"problems_per_round": 4},
    "generator": {"enabled": False}, "ray": {"num_cpus": 2, "max_restarts": 2},
})


class ScriptedSolver:
    """Grades by a hash of (problem, policy version, sample): a restarted actor that missed the
    current policy version would write different records."""

    def __init__(self):
        self.policy_version = 0

    def use_policy(self, version, adapter_path):
        self.policy_version = version

    def attempt(self, problems, round, seed, progress=False):
        time.sleep(SLOW_CALL_S if round == 2 else 0)
        out = []
        for p in problems:
            for i in range(CONFIG.solver.attempts):
                h = hashlib.sha256(f"{p.id}:{self.policy_version}:{i}:{seed}".encode()).digest()[0]
                out.append(Attempt(problem_id=p.id, policy_version=self.policy_version, sample_index=i, round=round,
                                   completion=f"answer: {h}", extracted_answer=str(h), correct=h % 3 == 0,
                                   reward=float(h % 3 == 0), num_tokens=3, created_by="solver"))
        return out

    def evaluate(self, problems, max_new_tokens, batch_size):
        return EvalResult()


class SlowTeacher(SymbolicTeacher):
    def teach(self, failures, known_ids, round):
        time.sleep(SLOW_CALL_S if round == 2 else 0)
        return super().teach(failures, known_ids, round)


class ScriptedLearner:
    def learn(self, batch):
        from curriculum.training.batch import LearnOutcome

        return LearnOutcome(metrics={"groups": float(len(batch.groups))})

    def publish(self, version, path):
        return path

    def policy_files(self, path):  # what the Solvers are sent: here the path itself
        return path

    def restore(self, path):
        return 0


def make_teacher(config):
    return SlowTeacher(ArithmeticWorld(config.world, seed=config.experiment.seed), config.teacher,
                       seed=config.experiment.seed)


@pytest.fixture(scope="module")
def local_ray():
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors cannot import this test module
    cluster.start_ray(CONFIG.ray)
    yield
    cluster.stop_ray()


def run(run_dir, kill_in_round_2: tuple[str, ...] = ()):
    """Seeds and two rounds; in round 2 the named roles are killed while their call runs."""
    ray_cfg = CONFIG.ray
    wanted = [("store", ray_cfg.store), ("solver", ray_cfg.solver), ("teacher", ray_cfg.teacher),
              ("learner", ray_cfg.learner)]
    placement = cluster.Placement(ray_cfg, wanted)
    try:
        roles = Roles(
            store=placement.spawn("store", ray_cfg.store, partial(factories.make_store, str(run_dir / "store.duckdb"))),
            solvers=[placement.spawn("solver", ray_cfg.solver, ScriptedSolver)],
            teacher=placement.spawn("teacher", ray_cfg.teacher, partial(make_teacher, CONFIG)),
            learner=placement.spawn("learner", ray_cfg.learner, ScriptedLearner))
        targets = {"attempt": roles.solvers[0], "teach": roles.teacher}

        def on_stage(stage):
            if loop.round == 2 and stage in targets and targets[stage].name in kill_in_round_2:
                victim = targets[stage].handle
                threading.Timer(SLOW_CALL_S / 4, lambda: ray.kill(victim, no_restart=False)).start()

        world = ArithmeticWorld(CONFIG.world, seed=0)
        loop = CoEvolution(CONFIG, roles, world, run_dir, prompt=lambda q: q + "\n", on_stage=on_stage)
        _restore_on_restart(roles, loop)
        loop.prepare_seeds()
        reports = [loop.run_round(1), loop.run_round(2)]
        restarts = {role.name: role.restarts for role in (roles.solvers[0], roles.teacher)}
        roles.store.call("close").result()
        return reports, restarts
    finally:
        placement.remove()


def test_killed_solver_and_teacher_are_restarted_and_the_round_completes(local_ray, tmp_path):
    reference, _ = run(tmp_path / "reference")
    reports, restarts = run(tmp_path / "killed", kill_in_round_2=("solver", "teacher"))
    assert restarts == {"solver": 1, "teacher": 1}
    assert [r.policy_version for r in reports] == [1, 2]
    assert reports[1].metrics["attempts"] == reference[1].metrics["attempts"] > 0
    assert reports[1].metrics["teacher/accepted"] == reference[1].metrics["teacher/accepted"] > 0
    # The restarted Solver got policy v1 back before re-sampling: the records are the same.
    comparison = compare_stores(tmp_path / "reference/store.duckdb", tmp_path / "killed/store.duckdb")
    assert comparison.equal, comparison.details[:10]
    assert comparison.compared > 50
