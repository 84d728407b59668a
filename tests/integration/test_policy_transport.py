"""A published policy reaches Solver actors that cannot read the Learner's checkpoint folder:
its files travel with the version announcement through Ray's object store."""

from __future__ import annotations

import shutil
from functools import partial

import pytest

from agents import cluster
from agents import roles as factories
from agents.proxy import RayRole, role_actor
from curriculum.config import from_dict
from curriculum.engines.hf import HFEngine
from curriculum.models import build_char_tokenizer, build_tiny_model, save_model
from curriculum.records import Attempt, Problem
from curriculum.roles.api import LearnerRole, SolverRole
from curriculum.training.batch import Group, LearnBatch

pytestmark = pytest.mark.integration

CONFIG = from_dict(
    {
        "model": {
            "tiny": {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 64},
            "lora": {"r": 4, "alpha": 8},
        },
        "solver": {"attempts": 4, "max_new_tokens": 8},
        "learner": {"learning_rate": 0.05, "steps_per_round": 2, "batch_size": 2},
        "ray": {"num_cpus": 2},
    }
)
PROMPTS = ["1+1=?\n", "2+3=?\n"]


def actor(factory, name: str) -> RayRole:
    return RayRole(role_actor().options(num_cpus=0.01).remote(factory, 1), name)


def test_solvers_without_the_learners_disk_load_the_policy_sent_to_them(tmp_path):
    import torch

    torch.manual_seed(0)
    tokenizer = build_char_tokenizer()
    base = tmp_path / "base"
    save_model(build_tiny_model(CONFIG.model.tiny, tokenizer), tokenizer, base)
    problems = [Problem(question=p.strip(), answer="2", source="seed") for p in PROMPTS]
    batch = LearnBatch(
        round=1,
        policy_version=0,
        groups=tuple(
            Group(
                problem=p,
                prompt=prompt,
                attempts=tuple(
                    Attempt(
                        problem_id=p.id,
                        policy_version=0,
                        sample_index=i,
                        round=1,
                        completion=f"answer: {2 + i}",
                        extracted_answer=str(2 + i),
                        correct=i == 0,
                        reward=float(i == 0),
                        num_tokens=10,
                    )
                    for i in range(2)
                ),
            )
            for p, prompt in zip(problems, PROMPTS)
        ),
    )

    cluster.start_ray(CONFIG.ray)
    try:
        learner_disk = tmp_path / "learner-node"
        learner = actor(partial(factories.make_learner, CONFIG, str(base), str(learner_disk / "learner")), "learner")
        solvers = [
            actor(
                partial(
                    factories.make_solver, CONFIG, str(base), f"solver-{i}", "cpu", str(tmp_path / f"solver-node-{i}")
                ),
                "solver",
            )
            for i in range(2)
        ]
        learner.call(LearnerRole.learn, batch).result()
        published = learner_disk / "learner" / "published" / "policy_v0001"  # on the Learner's node
        policy = learner.call(LearnerRole.publish, 1)
        policy.result()
        reference = shutil.copytree(published, tmp_path / "reference")
        shutil.rmtree(learner_disk)  # what the Solvers' machines see of the Learner's disk: nothing

        for solver in solvers:  # the pending result itself is the argument: Ray sends its ObjectRef
            solver.call(SolverRole.load_policy, policy).result()  # type: ignore[arg-type]
        expected = HFEngine.from_pretrained(base, adapter=reference).generate(PROMPTS, temperature=0, max_new_tokens=8)
        base_out = HFEngine.from_pretrained(base).generate(PROMPTS, temperature=0, max_new_tokens=8)
        assert expected != base_out  # the Learner's update changed the policy
        for i, solver in enumerate(solvers):
            got = solver.call(SolverRole.evaluate, problems, 8, 4).result()
            assert [item.completion for item in got.items] == [g[0].text for g in expected]
            assert (tmp_path / f"solver-node-{i}" / "policies" / "policy_v0001" / "adapter_model.safetensors").is_file()
    finally:
        cluster.stop_ray()
