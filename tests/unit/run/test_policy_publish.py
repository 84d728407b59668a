"""The loop announces each published policy version to the Solvers with the adapter's files (read
on the Learner's side), so a Solver needs no access to the Learner's checkpoint folder; the
Learner's checkpoint comes back to the driver, which alone writes it into the run directory and
sends it back to restore a Learner (curriculum/rundir.py)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from agents.proxy import LocalRole
from curriculum.config import from_dict
from curriculum.evaluation import EvalResult
from curriculum.files import FolderFiles
from curriculum.records import Attempt
from curriculum.roles.api import Roles
from curriculum.roles.solver import GradedAttempts
from curriculum.run.loop import CoEvolution
from curriculum.store import Store
from curriculum.training.batch import ADAPTER_FILES, LearnOutcome, PolicyRef
from curriculum.worlds.arithmetic import ArithmeticWorld

CONFIG = from_dict(
    {
        "world": {"families": ["add"], "max_level": 2, "heldout_per_level": 2, "seed_set_size": 4},
        "selection": {"seed_candidates": 8},
        "solver": {"attempts": 4},
        "loop": {"problems_per_round": 4},
        "teacher": {"enabled": False},
        "generator": {"enabled": False},
    }
)


class RecordingSolver:
    def __init__(self):
        self.policies: list[tuple[int, object]] = []
        self.policy_version = 0

    def load_policy(self, policy):
        self.policies.append(policy)
        self.policy_version = policy.version

    def attempt(self, problems, round, seed, progress=False):
        return GradedAttempts(
            [
                Attempt(
                    problem_id=p.id,
                    policy_version=self.policy_version,
                    sample_index=i,
                    round=round,
                    completion="answer: 1",
                    extracted_answer="1",
                    correct=hashlib.sha256(f"{p.id}{i}".encode()).digest()[0] % 2 == 0,
                    reward=0.0,
                    num_tokens=3,
                )
                for p in problems
                for i in range(4)
            ]
        )

    def evaluate(self, problems, max_new_tokens, batch_size):
        return EvalResult()


class FileLearner:
    """Publishes adapter-shaped files and an optimizer state whose bytes name the version into its
    own folder (its node's disk), answering as AdapterState does."""

    def __init__(self, disk: Path):
        self.disk = disk
        self.restored: list[PolicyRef] = []

    def learn(self, batch):
        return LearnOutcome(metrics={})

    def publish(self, version):
        path = self.disk / f"policy_v{version:04d}"
        path.mkdir(parents=True, exist_ok=True)
        for name in (*ADAPTER_FILES, "optimizer.pt"):
            (path / name).write_bytes(f"{name} of v{version}".encode())
        return PolicyRef.read(version, path, names=None)

    def restore(self, checkpoint):
        self.restored.append(checkpoint)
        return checkpoint.version


def test_each_version_reaches_the_solvers_as_the_learners_files(tmp_path):
    solvers = [RecordingSolver(), RecordingSolver()]
    learner_disk, run_dir = tmp_path / "learner-node", tmp_path / "run"
    with Store(tmp_path / "store.duckdb") as store:
        roles = Roles(
            store=LocalRole(store),
            solvers=[LocalRole(s) for s in solvers],
            teacher=None,
            learner=LocalRole(FileLearner(learner_disk)),
        )
        loop = CoEvolution(CONFIG, roles, ArithmeticWorld(CONFIG.world, seed=0), run_dir, prompt=lambda q: q + "\n")
        loop.prepare_seeds()
        loop.run_round(1)
        loop.run_round(2)
        loop.restore(roles.solvers[0])  # what a restarted Solver is given: the same files, not read again
    for solver in solvers:
        assert [policy.version for policy in solver.policies[:2]] == [1, 2]
        for version, sent in enumerate(solver.policies[:2], 1):
            assert isinstance(sent.files, FolderFiles)
            assert sent.uri == str(learner_disk / f"policy_v{version:04d}")  # the Learner's folder, not the run's
            assert sorted(sent.files.files) == sorted(ADAPTER_FILES)  # no optimizer state for a Solver
            assert sent.files.files["adapter_model.safetensors"] == f"adapter_model.safetensors of v{version}".encode()
    assert solvers[0].policies[-1] is solvers[0].policies[1]
    for version in (1, 2):  # the driver wrote the adapters into the run directory, the newest whole
        kept = run_dir / "checkpoints" / f"policy_v{version:04d}"
        assert (kept / "adapter_model.safetensors").read_bytes() == f"adapter_model.safetensors of v{version}".encode()
    assert (kept / "optimizer.pt").read_bytes() == b"optimizer.pt of v2"
    assert not (run_dir / "checkpoints/policy_v0001/optimizer.pt").exists()  # checkpoint pruning: newest only


def test_a_resumed_run_sends_the_checkpoint_from_the_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    with Store(tmp_path / "store.duckdb") as store:
        roles = Roles(
            store=LocalRole(store),
            solvers=[LocalRole(RecordingSolver())],
            teacher=None,
            learner=LocalRole(FileLearner(tmp_path / "learner-node")),
        )
        loop = CoEvolution(CONFIG, roles, ArithmeticWorld(CONFIG.world, seed=0), run_dir, prompt=lambda q: q + "\n")
        loop.prepare_seeds()
        loop.run_round(1)
    shutil.rmtree(tmp_path / "learner-node")  # a new Learner, on another node: only the run directory has v1
    learner, solver = FileLearner(tmp_path / "new-learner-node"), RecordingSolver()
    with Store(tmp_path / "store.duckdb") as store:
        roles = Roles(store=LocalRole(store), solvers=[LocalRole(solver)], teacher=None, learner=LocalRole(learner))
        CoEvolution(CONFIG, roles, ArithmeticWorld(CONFIG.world, seed=0), run_dir, prompt=lambda q: q + "\n").resume()
    (checkpoint,) = learner.restored
    assert checkpoint.version == 1 and checkpoint.files.files["optimizer.pt"] == b"optimizer.pt of v1"
    (policy,) = solver.policies
    assert policy.version == 1 and policy.uri is None  # no folder to look in: the driver's disk is not the Solver's
    assert sorted(policy.files.files) == sorted(ADAPTER_FILES) and policy.digest == checkpoint.digest
