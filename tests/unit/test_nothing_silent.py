"""Nothing silent: grading timeouts are counted per round and warned about, and data records
without an answer are refused in one line or, when asked, skipped and counted."""

import json
import logging

import pytest

from curriculum.config import from_dict
from curriculum.engines.base import Generation, InferenceEngine
from curriculum.models import build_char_tokenizer
from curriculum.roles.solver import Solver
from curriculum.run.loop import CoEvolution, LocalRole, Roles
from curriculum.run.resume import RoundState
from curriculum.store import Store
from curriculum.verify import Verifier
from curriculum.worlds.arithmetic import ArithmeticWorld
from scripted_roles import NoOpLearner

SLOW = "answer: 9^{9^{9}}"  # sympy takes far longer than the verifier allows to compare this


class FirstProblemSlow(InferenceEngine):
    """Every sample at the first question it is shown reads as a slow answer; the rest answer 0."""

    def __init__(self):
        self.tokenizer = build_char_tokenizer()
        self.slow_prompt = None

    def generate(self, prompts, n=1, temperature=1.0, top_p=1.0, max_new_tokens=128, seed=0, batch_size=None,
                 progress=False):
        self.slow_prompt = self.slow_prompt or prompts[0]
        return [[Generation(SLOW if p == self.slow_prompt else "answer: 0", 9, -1.0)] * n for p in prompts]

    def load_adapter(self, path, version=0):
        pass

    @property
    def adapter_path(self):
        return None


def test_a_round_with_slow_grades_reports_verify_timeouts_and_warns(tmp_path, caplog):
    config = from_dict({
        "world": {"families": ["add"], "max_level": 1, "heldout_per_level": 2, "seed_set_size": 2}, "solver": {"attempts": 4},
        "selection": {"fresh_fraction": 1.0, "failed_fraction": 0.0}, "loop": {"problems_per_round": 2},
        "teacher": {"enabled": False}, "generator": {"enabled": False}, "verifier": {"timeout_s": 0.5}})
    world = ArithmeticWorld(config.world, seed=0)
    with Store(tmp_path / "store.duckdb") as store, Verifier(config.verifier.timeout_s) as verifier:
        store.append(world.seed_problems())
        solver = Solver(FirstProblemSlow(), verifier, config.solver, extraction=world.extraction)
        roles = Roles(store=LocalRole(store), solvers=[LocalRole(solver)], teacher=None,
                      learner=LocalRole(NoOpLearner()))
        loop = CoEvolution(config, roles, world, tmp_path / "run", prompt=lambda q: q + "\n")
        with caplog.at_level(logging.WARNING, logger="curriculum.run.loop"):
            report = loop.run_round(1)
    # 2 problems x 4 attempts, then 2 held-out problems: the first problem's 4 attempts timed out
    assert report.metrics["verify/grades"] == 10 and report.metrics["verify/timeouts"] == 4
    assert [r.getMessage() for r in caplog.records] == [
        "round 1: 4 of 10 grades (40.0%) ran past verifier.timeout_s=0.5 s and count as wrong; raise "
        "verifier.timeout_s (a busy machine, long answers)"]


def test_timeouts_at_or_below_one_percent_of_a_rounds_grades_are_counted_without_a_warning(tmp_path, caplog):
    loop = CoEvolution.__new__(CoEvolution)  # only the warning rule: no roles needed
    loop.config = from_dict({})
    quiet = RoundState(round=3, start_version=0, policy_version=0, generator_version=0,
                       metrics={"verify/grades": 300, "verify/timeouts": 3})
    with caplog.at_level(logging.WARNING, logger="curriculum.run.loop"):
        loop._warn_on_timeouts(quiet)
    assert not caplog.records
