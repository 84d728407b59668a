"""A world with none of the optional capabilities (no oracle, mutator or pretraining data) runs a whole
round: seeds, attempts, an update, evaluation and the round's records, with real in-process roles on
the toy model. Nothing outside the world asks which world it is."""

import random

import pytest

from curriculum.config import Config
from curriculum.evaluation import EvalResult
from curriculum.records import Problem
from curriculum.run.actors import local_roles, stop
from curriculum.run.loop import CoEvolution
from curriculum.store import Store
from curriculum.testing.groups import graded_group
from curriculum.worlds import World


class SumsWorld(World):
    """One-digit sums written by hand: held-out and seed problems, nothing else."""

    name = "sums"
    extraction = "answer_colon"
    instruction = ""
    report_by = "family"

    def _problem(self, a: int, b: int, source: str) -> Problem:
        return Problem(
            question=f"{a}+{b}=?", answer=str(a + b), solution=f"answer: {a + b}", source=source, family="sums"
        )

    def heldout(self) -> list[Problem]:
        return [self._problem(a, 9 - a, "dataset") for a in range(4)]

    def seed_candidates(self, n: int, rng: random.Random) -> list[Problem]:
        return [self._problem(rng.randrange(5), rng.randrange(4), "seed") for _ in range(n)]


def in_process_without_teacher(tiny_config: Config) -> Config:
    """The tiny config with in-process roles and neither Teacher nor Generator (they need a mutator)."""
    return Config.model_validate(
        {
            **tiny_config.model_dump(),
            "teacher": {"enabled": False},
            "generator": {"enabled": False},
            "ray": {"in_process": True},
        }
    )


def test_a_world_without_capabilities_runs_a_whole_round(tiny_config, tiny_base_model, tmp_path):
    world = SumsWorld()
    assert world.oracle() is None and world.mutator() is None and world.pretraining() is None
    config = in_process_without_teacher(tiny_config)
    roles = local_roles(config, tmp_path, str(tiny_base_model))
    try:
        loop = CoEvolution(config, roles, world, tmp_path, prompt=lambda question: question + "\n")
        seeds = loop.prepare_seeds()
        report = loop.run_round(1)
    finally:
        stop(roles, None)
        roles.store.call(Store.close).result()
    assert seeds.metrics["seed_candidates"] > 0
    assert report.policy_version == 1 and report.evaluation.n == len(world.heldout())
    assert set(report.evaluation.by_family) == {"sums"}
    with Store(tmp_path / "store.duckdb", read_only=True) as store:
        assert store.round_attempts(1) and [s.stage for s in store.stage_records()][-1] == "checkpoint"
        assert store.counts()["policies"] == 1 and store.counts()["rounds"] == 1
    assert (tmp_path / "checkpoints" / "policy_v0001" / "adapter_model.safetensors").is_file()


def test_earlier_rounds_successes_are_replayed_as_anchors(tiny_config, tiny_base_model, tmp_path):
    data = in_process_without_teacher(tiny_config).model_dump()
    data["learner"]["retention"].update(anchor_weight=1.0, anchor_min_solve_rate=0.125, replay_per_level=2)
    config = Config.model_validate(data)
    roles = local_roles(config, tmp_path, str(tiny_base_model))
    try:
        loop = CoEvolution(config, roles, SumsWorld(), tmp_path, prompt=lambda question: question + "\n")
        loop.prepare_seeds()
        # Ten problems the base model solved in round 0 (the seed screen's round): more than round 1 selects.
        solved = [Problem(question=f"{a}+0=?", answer=str(a), source="seed") for a in range(10)]
        right = [
            graded_group(a, "R").attempts[0].model_copy(update={"problem_id": p.id, "round": 0})
            for a, p in enumerate(solved)
        ]
        roles.store.call(Store.append, [*solved, *right]).result()
        report = loop.run_round(1)
    finally:
        stop(roles, None)
        roles.store.call(Store.close).result()
    # SumsWorld's problems have no level: one level, so at most 2, each also an anchor.
    assert report.metrics["replayed"] == 2
    assert report.metrics["learner/retention/anchors"] >= 2


class ValidatedSumsWorld(SumsWorld):
    """The same, with a validation set that the seed candidates can draw too."""

    def validation(self) -> list[Problem]:
        return [self._problem(4, b, "dataset") for b in range(3)]


def test_a_validation_set_is_evaluated_each_round_and_never_trained_on(tiny_config, tiny_base_model, tmp_path):
    world = ValidatedSumsWorld()
    kept_out = {p.id for p in world.validation()}
    config = in_process_without_teacher(tiny_config)
    roles = local_roles(config, tmp_path, str(tiny_base_model))
    try:
        loop = CoEvolution(config, roles, world, tmp_path, prompt=lambda question: question + "\n")
        seeds = loop.prepare_seeds(evaluate_base=False)  # the toy base: its held-out table came with it
        loop.base_validation = EvalResult.from_dict(seeds.validation)  # as the runner does
        report = loop.run_round(1)
    finally:
        stop(roles, None)
        roles.store.call(Store.close).result()
    assert seeds.evaluation is None and seeds.metrics["validation/accuracy"] >= 0
    assert EvalResult.from_dict(seeds.validation).n == 3
    assert report.metrics["validation/drop/sums"] == pytest.approx(
        100 * (seeds.metrics["validation/accuracy"] - report.metrics["validation/accuracy"])
    )
    assert report.metrics["validation/worst_drop"] == report.metrics["validation/drop/sums"]
    assert report.evaluation.n == len(world.heldout())  # the held-out report is the held-out set alone
    with Store(tmp_path / "store.duckdb", read_only=True) as store:
        assert not {a.problem_id for a in store.round_attempts(1)} & kept_out
        assert not set(store.problem_ids()) & kept_out
