"""The Learner interface: the algorithm comes from config, each builds its own data from a LearnBatch."""

import pytest
import torch

from curriculum.config import Config, LearnerConfig, LoraConfig
from curriculum.roles.learner import make_learner
from curriculum.testing.groups import graded_group
from curriculum.training.adapter import AdapterState
from curriculum.training.batch import Group, LearnBatch
from curriculum.training.dpo import DPO
from curriculum.training.grpo import GRPO
from curriculum.training.pairs import build_preference_pairs
from curriculum.training.sft import SFT, sft_examples


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    pass


group = graded_group


BATCH = LearnBatch(round=1, policy_version=0, groups=(group(1, "RWWR"), group(2, "WWWW"), group(3, "RRRR")))


@pytest.mark.parametrize("algorithm, kind", [("dpo", DPO), ("sft", SFT), ("grpo", GRPO)])
def test_factory_builds_the_configured_algorithm(algorithm, kind, base_path, tmp_path):
    config = Config.model_validate(
        {"learner": {"algorithm": algorithm}, "solver": {"attempts": 8}, "model": {"lora": {"r": 2, "alpha": 4}}}
    )
    learner = make_learner(config, base_path, tmp_path)
    assert type(learner.algorithm) is kind and learner.algorithm.state is learner.state  # composed, not subclassed
    assert callable(learner.learn) and callable(learner.publish) and callable(learner.restore)


def test_dpo_learner_builds_socratic_zero_pairs_from_the_batch(base_path, tmp_path):
    cfg = LearnerConfig(learning_rate=1e-2, batch_size=8)
    learner = DPO(AdapterState(base_path, LoraConfig(r=2, alpha=4), cfg, tmp_path, seed=0))
    outcome = learner.learn(BATCH)
    expected = [
        p
        for g in BATCH.groups
        for p in build_preference_pairs(g.problem, g.attempts, g.prompt, 0, 1, cfg.pairing, cfg.max_pairs_per_problem)
    ]
    assert outcome.pairs == expected
    # group 1: two wrong vs two right; group 2: the reference wins over 4 distinct wrong; group 3: no pair.
    assert len(expected) == 6 and sum(p.chosen_is_reference for p in outcome.pairs) == 4
    assert outcome.metrics["steps"] == 1


def test_sft_examples_are_the_correct_attempts_or_the_reference():
    assert sft_examples(BATCH.groups[0]) == (["answer: 2"], False)  # the two right attempts are the same text
    assert sft_examples(BATCH.groups[1]) == (["2+1+0=3\nanswer: 3"], True)
    assert sft_examples(Group(BATCH.groups[1].problem, ())) == ([], False)  # never attempted: nothing


def test_sft_learner_trains_a_fixed_number_of_steps(base_path, tmp_path):
    cfg = LearnerConfig(algorithm="sft", learning_rate=1e-2, batch_size=2, steps_per_round=3)
    learner = SFT(AdapterState(base_path, LoraConfig(r=2, alpha=4), cfg, tmp_path, seed=0))
    start = {n: p.detach().clone() for n, p in learner.state.model.named_parameters()}
    outcome = learner.learn(BATCH)
    m = outcome.metrics
    assert (m["steps"], m["examples"], m["examples_from_reference"]) == (3, 3, 1)  # 3 steps over 3 examples
    assert learner.state.optimizer_steps == 3
    trainable = {n for n, p in learner.state.model.named_parameters() if p.requires_grad}
    assert {n for n, p in learner.state.model.named_parameters() if not torch.equal(p, start[n])} == trainable
