"""The Solver: attempts keep the engine's tokens, and a published policy reaches it as files."""

import shutil
import time

import pytest
import torch
from toy_models import SMALL

from curriculum.config import HFSolverConfig, LoraConfig
from curriculum.engines.hf import HFEngine
from curriculum.files import FolderFiles
from curriculum.models import attach_lora, build_tiny_model, load_tokenizer
from curriculum.records import Problem
from curriculum.roles.solver import Solver
from curriculum.training.batch import ADAPTER_FILES, PolicyRef
from curriculum.verify import Verifier

PROBLEMS = [Problem(question=f"{i}+{i}=?", answer=str(2 * i), source="seed") for i in range(3)]


@pytest.fixture(scope="module")
def adapter(base_path, tmp_path_factory):
    """A LoRA adapter with random B on the base model: a policy that writes other text."""
    tokenizer = load_tokenizer(base_path)
    torch.manual_seed(1)
    peft_model = attach_lora(build_tiny_model(SMALL, tokenizer), LoraConfig(r=4, alpha=8))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 1.0)
    folder = tmp_path_factory.mktemp("learner") / "policy_v0001"
    peft_model.save_pretrained(folder)
    return folder


def make_solver(base_path, work_dir) -> Solver:
    return Solver(
        HFEngine.from_pretrained(base_path),
        Verifier(),
        HFSolverConfig(attempts=2, max_new_tokens=8),
        extraction="answer_colon",
        work_dir=work_dir,
        name="solver-0",
    )


def test_attempts_keep_the_sampled_tokens_and_their_logprobs(base_path, tmp_path):
    solver = make_solver(base_path, tmp_path)
    attempts = solver.attempt(PROBLEMS, round=1, seed=3)
    samples = solver.engine.generate([p.question + "\n" for p in PROBLEMS], n=2, max_new_tokens=8, seed=3)
    assert [a.token_ids for a in attempts] == [list(g.token_ids) for per in samples for g in per]
    for attempt in attempts:
        assert len(attempt.token_ids) == len(attempt.token_logprobs) == attempt.num_tokens
        assert sum(attempt.token_logprobs) == pytest.approx(attempt.logprob, abs=1e-4)
        assert solver.engine.tokenizer.decode(attempt.token_ids, skip_special_tokens=True) == attempt.completion
    solver.close()


def test_the_solver_splits_its_attempt_seconds_into_sampling_and_grading(base_path, tmp_path, monkeypatch):
    solver = make_solver(base_path, tmp_path)
    assert solver.take_seconds() == {"sample": 0.0, "grade": 0.0}
    grade_many = solver.verifier.grade_many

    def slow_grading(*args):
        time.sleep(0.3)
        return grade_many(*args)

    monkeypatch.setattr(solver.verifier, "grade_many", slow_grading)
    solver.attempt(PROBLEMS, round=1, seed=3)
    seconds = solver.take_seconds()
    assert seconds["sample"] > 0 and seconds["grade"] >= 0.3
    assert solver.take_seconds() == {"sample": 0.0, "grade": 0.0}  # taken: counted afresh
    solver.close()


def test_a_solver_that_cannot_read_the_learners_folder_loads_the_sent_files(base_path, adapter, tmp_path):
    reference = HFEngine.from_pretrained(base_path, adapter=adapter)
    expected = reference.generate(["1+1=?\n"], n=1, temperature=0, max_new_tokens=8)
    learner_disk = tmp_path / "learner-node"
    shutil.copytree(adapter, learner_disk / "policy_v0001")
    policy = PolicyRef.read(1, learner_disk / "policy_v0001")
    shutil.rmtree(learner_disk)  # the Learner's folder is on another machine

    solver = make_solver(base_path, tmp_path / "solver-node")
    solver.load_policy(policy)
    assert solver.policy_version == 1
    assert solver.engine.adapter_path == str(tmp_path / "solver-node" / "policies" / "policy_v0001")
    assert solver.engine.generate(["1+1=?\n"], n=1, temperature=0, max_new_tokens=8) == expected

    # The next version replaces the local copy; on one machine the Learner's folder is used as it is.
    solver.load_policy(PolicyRef.read(2, adapter))
    assert solver.engine.adapter_path == str(adapter)
    assert not (tmp_path / "solver-node" / "policies" / "policy_v0001").exists()
    solver.close()


def test_a_folder_at_the_learners_path_with_other_bytes_is_not_used(base_path, adapter, tmp_path):
    """Another node may hold an unrelated folder at the Learner's path: only the same bytes count."""
    stale = tmp_path / "learner" / "policy_v0001"
    stale.mkdir(parents=True)
    for name in ADAPTER_FILES:
        (stale / name).write_bytes(b"another run's file")
    sent = FolderFiles(str(stale), FolderFiles.read(adapter, ADAPTER_FILES).files)
    solver = make_solver(base_path, tmp_path / "solver")
    solver.load_policy(PolicyRef(1, "stale", str(stale), sent))
    copy = tmp_path / "solver" / "policies" / "policy_v0001"
    assert solver.engine.adapter_path == str(copy)
    assert sent.found_at(copy) and not sent.found_at(stale)
    solver.close()
