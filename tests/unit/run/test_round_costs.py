"""What a round costs, in its metrics (rollout tokens/s, seconds per optimizer step, peak GPU
memory per role); the Solvers asleep while the Learner trains on their GPU and woken with the new
policy; and a GPU out-of-memory error in a role as one line naming the setting to lower."""

from types import SimpleNamespace

import pytest
import torch

from agents.proxy import LocalRole
from curriculum.config import Config, HFSolverConfig, VLLMSolverConfig
from curriculum.engines.base import InferenceEngine
from curriculum.gpu import GPUOutOfMemory
from curriculum.models import build_char_tokenizer
from curriculum.records import Problem
from curriculum.roles.api import LearnerRole, SolverRole
from curriculum.roles.learner import Learner
from curriculum.roles.solver import Solver
from curriculum.run.actors import local_roles, stop
from curriculum.run.loop import CoEvolution
from curriculum.store import Store
from curriculum.training.batch import LearnBatch
from curriculum.verify import Verifier
from tests.unit.run.test_minimal_world import SumsWorld


def test_a_round_reports_its_costs_and_the_solvers_sleep_while_the_learner_trains(
    tiny_config, tiny_base_model, tmp_path
):
    dumped = tiny_config.model_dump()
    config = Config.model_validate(
        {
            **dumped,
            "teacher": {"enabled": False},
            "generator": {"enabled": False},
            "ray": {"in_process": True},
            "solver": {**dumped["solver"], "sleep_while_learning": True},  # on CPU: "auto" would not
        }
    )
    roles = local_roles(config, tmp_path, str(tiny_base_model))
    solver, learner = roles.solvers[0].target, roles.learner.target
    engine, events = solver.engine, []

    def spy(target, name):  # records each call with whether the engine is asleep after it
        method = getattr(target, name)

        def call(*args, **kwargs):
            value = method(*args, **kwargs)
            events.append((name, engine.asleep))
            return value

        setattr(target, name, call)

    def learn(batch):  # the Learner trains while the Solver's engine is asleep
        events.append(("learn", engine.asleep))
        return Learner.learn(learner, batch)

    for name in ("sleep", "wake_up", "load_adapter"):
        spy(engine, name)
    learner.learn = learn
    try:
        loop = CoEvolution(config, roles, SumsWorld(), tmp_path, prompt=lambda question: question + "\n")
        loop.prepare_seeds()
        assert events == []  # no learning, no sleep
        report = loop.run_round(1)
    finally:
        stop(roles, None)
        roles.store.call(Store.close).result()
    assert events == [("sleep", True), ("learn", True), ("wake_up", False), ("load_adapter", False)]
    assert engine.adapter_path.endswith("policy_v0001") and solver.policy_version == 1
    m = report.metrics
    assert m["rollout/tokens_per_second"] > 0 and m["rollout/tokens"] > 0
    assert m["rollout/tokens_per_second"] == pytest.approx(m["rollout/tokens"] / m["rollout/sample_seconds"])
    assert m["learner/step_seconds"] > 0 and m["learner/steps"] >= 1
    assert m["learner/peak_gpu_memory_gib"] == 0.0 and m["solver/peak_gpu_memory_gib"] == 0.0  # no CUDA here


class OutOfMemoryEngine(InferenceEngine):
    tokenizer = build_char_tokenizer()

    def generate(self, prompts, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has 1.2 GiB free.")

    def load_adapter(self, path, version=0):
        pass

    @property
    def adapter_path(self):
        return None


class OutOfMemoryAlgorithm:
    """Runs out of GPU memory in its round (no model needed)."""

    def __init__(self):
        self.state = SimpleNamespace(last_step_seconds=0.0)

    def learn(self, batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.27 GiB.")


def test_a_learner_out_of_gpu_memory_ends_in_one_line_naming_micro_batch_size():
    learner = Learner(OutOfMemoryAlgorithm())
    with pytest.raises(GPUOutOfMemory) as error:
        LocalRole(learner).call(LearnerRole.learn, LearnBatch(1, 0, ())).result()
    message = str(error.value)
    assert "\n" not in message and "Tried to allocate 9.27 GiB" in message
    assert message.endswith("lower learner.micro_batch_size (or set learner.gradient_checkpointing=true)")


@pytest.mark.parametrize(
    ("config", "setting"),
    [(VLLMSolverConfig(), "solver.vllm.gpu_memory_utilization"), (HFSolverConfig(), "solver.batch_size")],
)
def test_a_solver_out_of_gpu_memory_ends_in_one_line_naming_its_engines_setting(config, setting):
    solver = Solver(OutOfMemoryEngine(), Verifier(2.0), config, extraction="answer_colon")
    try:
        problems = [Problem(question="1+1=?", answer="2", source="seed")]
        for call in (
            lambda: LocalRole(solver).call(SolverRole.attempt, problems, 1, 0),
            lambda: LocalRole(solver).call(SolverRole.evaluate, problems, 8, 8),
        ):
            with pytest.raises(GPUOutOfMemory, match=rf"^the Solver solver ran out of GPU memory .*; lower {setting}$"):
                call()
    finally:
        solver.close()


def test_other_errors_pass_through_as_they_are():
    class Broken(OutOfMemoryAlgorithm):
        def learn(self, batch):
            raise RuntimeError("shape mismatch")

    learner = Learner(Broken())
    with pytest.raises(RuntimeError, match="shape mismatch"):
        learner.learn(LearnBatch(1, 0, ()))
