"""Kill role actors (`ray.kill`) during the methods the loop calls on them and check that the
run ends with the same records, the same published weights and the same evaluation as a run
where nothing died (tests/integration/test_actor_failure.py: a representative set of kills;
tests/slow/test_actor_kill_matrix.py: every method in every phase).

The roles are scripted (no model) so the test costs only Ray's start-up and the restarts, but
they are stateful the way the real ones are: the Learner's "weights" are a hash chain of the
batches it learnt from, published to and restored from disk; the Solver samples with the weights
it loaded; the Generator checkpoints each version and proposes with it. They run in real Ray
actors placed like a real run's, next to the real Store actor and the real symbolic Teacher. A
Learner that published its old weights as a new version (the lost update), a Solver or a
Generator restarted without its version, or a store write lost or doubled, shows up as a record
that differs from the reference run. The kills come from `CURRICULUM_KILL_ACTOR`
(curriculum/faults.py): "sent" (dies before or while running the call), "done" (dies after
running it, its answer lost) and "idle" (dies after answering: the next call finds it restarted).
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from agents import cluster
from agents import roles as factories
from curriculum import faults
from curriculum.config import from_dict
from curriculum.evaluation import Cell, EvalResult
from curriculum.files import FolderFiles
from curriculum.records import Attempt, Problem
from curriculum.roles.api import Roles
from curriculum.roles.solver import GradedAttempts
from curriculum.run.actors import restore_on_restart
from curriculum.run.loop import CoEvolution
from curriculum.run.resume import compare_stores
from curriculum.store import Store
from curriculum.training.batch import LearnOutcome, PolicyRef
from curriculum.worlds.arithmetic import ArithmeticWorld

ROOT = Path(__file__).resolve().parents[2]
CONFIG = from_dict(
    {
        "world": {"families": ["add"], "max_level": 2, "heldout_per_level": 2, "seed_set_size": 4},
        "selection": {"seed_candidates": 8},
        "solver": {"attempts": 4},
        "loop": {"problems_per_round": 4},
        "generator": {"warmup_rounds": 0, "proposals_per_round": 2},
        "ray": {"num_cpus": 2, "max_restarts": 64},  # the matrix kills one actor up to ~30 times
    }
)
ROUNDS = 2
ROLES = ("store", "solver", "teacher", "learner", "generator")
# The methods the loop calls on each role in seeds + two rounds and how often (`round_attempts`
# is read on resume only, `export_parquet` only with held writes, i.e. through `read_with`;
# `restore` only to restore a restarted actor).
METHODS = {
    "store": {
        "stage_records": 1,
        "problems": 2,
        "solve_rates": 2,
        "problems_by_query": 2,
        "get_problems": 2,
        "problem_ids": 4,
        "read_with": 4,
        "problem_counts_by_source": 2,
        "append": 19,
        "close": 1,
    },
    "solver": {"attempt": 3, "load_policy": 2, "evaluate": 2},
    "teacher": {"teach": 2},
    "learner": {"learn": 2, "publish": 2, "restore": 1},
    "generator": {"train": 2, "propose": 2, "restore": 1},
}


def policy_ref(version, weights):
    files = {"adapter_config.json": b"{}", "adapter_model.safetensors": weights.encode()}
    return PolicyRef(version, f"v{version}", None, FolderFiles("", files))


def digest(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


class ScriptedSolver:
    """Grades by a hash of (problem, loaded weights, sample, seed): a Solver restarted without the
    current policy, or given stale weights, writes different attempts."""

    def __init__(self):
        self.weights = "base"
        self.policy_version = 0

    def load_policy(self, policy):
        self.policy_version = 0 if policy is None else policy.version
        self.weights = policy.files.files["adapter_model.safetensors"].decode() if policy is not None else "base"

    def attempt(self, problems, round, seed, progress=False):
        out = []
        for p in problems:
            for i in range(CONFIG.solver.attempts):
                h = int(digest(p.id, self.weights, i, seed), 16) % 251
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
                        created_by="solver",
                    )
                )
        return GradedAttempts(out)

    def evaluate(self, problems, max_new_tokens, batch_size):
        correct = sum(int(digest(p.id, self.weights), 16) % 2 for p in problems)
        return EvalResult(cells={("add", 1): Cell(n=len(problems), correct=correct, tokens=len(problems))})


class ScriptedLearner:
    """Its weights are a hash chain of the batches it learnt from; publish answers them as the
    checkpoint's files, restore is sent them back (a fresh Learner holds the base weights)."""

    def __init__(self):
        self.weights = "base"

    def learn(self, batch):
        attempts = sorted(a.id for group in batch.groups for a in group.attempts)
        self.weights = digest(self.weights, attempts)
        return LearnOutcome(metrics={"groups": float(len(batch.groups))})

    def publish(self, version):
        return policy_ref(version, self.weights)

    def restore(self, checkpoint):
        self.weights = checkpoint.files.files["adapter_model.safetensors"].decode()
        return checkpoint.version


class ScriptedGenerator:
    """Answers every version it trains to as its checkpoint's files and is restored from them, like
    roles/generator.py; its proposals depend on its version."""

    def __init__(self):
        self.version = 0
        self.world = ArithmeticWorld(CONFIG.world, seed=0)

    def train(self, examples):
        self.version += 1
        checkpoint = FolderFiles("", {"version.txt": str(self.version).encode()})
        return {"examples": float(len(examples)), "version": float(self.version)}, checkpoint

    def restore(self, version, checkpoint=None):
        if version and (checkpoint is None or checkpoint.files["version.txt"] != str(version).encode()):
            raise ValueError(f"no checkpoint of version {version}")
        self.version = version
        return version

    def propose(self, parents, n, round):
        rng = random.Random(f"{self.version}:{round}")
        drafts = [
            self.world.mutate(parents[i % len(parents)], "sibling", rng, round=round, source="generator")
            for i in range(n)
        ]
        return [Problem.model_validate({**d.model_dump(), "model_version": self.version}) for d in drafts], []


def start_ray(code_dir: Path | None = None) -> None:
    """A local cluster whose workers import the packages from `code_dir` (a run's copy), if given."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors cannot import this module
    cluster.start_ray(CONFIG.ray, code_dir=code_dir)


def run(run_dir: Path, kills: Sequence[str] = ()) -> tuple[list, dict[str, int]]:
    """Seeds and two rounds with every role in its own actor, killed as `kills` (CURRICULUM_KILL_ACTOR
    items) say; the round reports and the restarts per role. Every kill must have happened."""
    ray_cfg = CONFIG.ray
    wanted = [
        ("store", ray_cfg.store),
        ("solver", ray_cfg.solver),
        ("teacher", ray_cfg.teacher),
        ("learner", ray_cfg.learner),
        ("generator", ray_cfg.generator),
    ]
    placement = cluster.Placement(ray_cfg, wanted)
    faults.reset_actor_kills()
    if kills:
        os.environ[faults.ACTOR_KILL_ENV] = ",".join(kills)
    try:
        roles = Roles(
            store=placement.spawn("store", ray_cfg.store, partial(factories.make_store, str(run_dir / "store.duckdb"))),
            solvers=[placement.spawn("solver", ray_cfg.solver, ScriptedSolver)],
            teacher=placement.spawn("teacher", ray_cfg.teacher, partial(factories.make_teacher, CONFIG)),
            learner=placement.spawn("learner", ray_cfg.learner, ScriptedLearner),
            generator=placement.spawn("generator", ray_cfg.generator, ScriptedGenerator),
        )
        loop = CoEvolution(CONFIG, roles, ArithmeticWorld(CONFIG.world, seed=0), run_dir, prompt=lambda q: q + "\n")
        restore_on_restart(roles, loop.restore)
        loop.resume()  # a fresh store: nothing to restore, but the read is one the loop makes
        reports = [loop.prepare_seeds()] + [loop.run_round(r) for r in range(1, ROUNDS + 1)]
        roles.store.call(Store.close).result()
        restarts = {
            role.name: role.restarts
            for role in (roles.store, *roles.solvers, roles.teacher, roles.learner, roles.generator)
        }
    finally:
        os.environ.pop(faults.ACTOR_KILL_ENV, None)
        placement.remove()
    assert faults.actor_kills_fired() == sorted(kills)  # every kill happened
    for role in ROLES:  # each killed role was restored (once for kills that came before it was called again)
        assert restarts[role] >= any(kill.startswith(role + ".") for kill in kills), restarts
    return reports, restarts


def assert_same_run(killed: Path, reports: list, reference: Path, reference_reports: list) -> None:
    """The killed run ended as the reference run did: records, weights, metrics, evaluation."""
    assert [r.policy_version for r in reports[1:]] == [1, 2]
    assert [r.metrics for r in reports[1:]] == [r.metrics for r in reference_reports[1:]]
    assert reports[-1].evaluation.to_dict() == reference_reports[-1].evaluation.to_dict()
    comparison = compare_stores(reference / "store.duckdb", killed / "store.duckdb")
    assert comparison.equal, comparison.details[:10]
    assert comparison.compared > 50
    # Each version holds the weights of the update that made it, not the weights before it.
    for version in (1, 2):
        name = f"checkpoints/policy_v{version:04d}/adapter_model.safetensors"
        assert (killed / name).read_text() == (reference / name).read_text()
    assert (killed / "checkpoints/policy_v0001/adapter_model.safetensors").read_text() != (
        killed / "checkpoints/policy_v0002/adapter_model.safetensors"
    ).read_text()
