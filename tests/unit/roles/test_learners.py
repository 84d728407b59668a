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


def test_a_batch_drops_groups_sampled_more_than_the_bound_before_its_policy():
    old, older = (
        Group(g.problem, tuple(a.model_copy(update={"policy_version": v}) for a in g.attempts), g.prompt)
        for g, v in ((group(1, "RWWR"), 2), (group(2, "RWWW"), 1))
    )
    batch = LearnBatch(round=3, policy_version=3, groups=(old, older))
    assert [batch.staleness(g) for g in batch.groups] == [1, 2]
    assert batch.drop_stale(1) == (LearnBatch(round=3, policy_version=3, groups=(old,)), 1)
    assert batch.drop_stale(2) == (batch, 0)


def test_async_learner_drops_and_counts_stale_groups_and_grpo_corrects_with_the_recorded_logprobs(base_path, tmp_path):
    """loop.mode=async: the Learner of v2 gets groups sampled by v1 (kept) and by v0 (two versions
    back: dropped and counted). The kept ones reach TRL with their recorded sampling log-probs, here
    0.5 nats per token below what the policy that sampled them gives: TRL's correction sees exactly
    that difference, so it weighs the update by the recorded log-probs, not by the trainer's own."""
    from tests.unit.training.test_grpo import K, sampled_groups

    config = Config.model_validate(
        {
            "loop": {"mode": "async", "max_staleness": 1},
            "learner": {"algorithm": "grpo", "steps_per_round": 1, "grpo": {"groups_per_step": 2}},
            "solver": {"attempts": K, "temperature": 1.0, "max_new_tokens": 8},
            "model": {"lora": {"r": 2, "alpha": 4}},
        }
    )
    learner = make_learner(config, base_path, tmp_path)
    assert learner.max_staleness == 1
    groups = [
        Group(g.problem, tuple(a.model_copy(update={"policy_version": version}) for a in g.attempts), g.prompt)
        for g, version in zip(sampled_groups(base_path, shift=-0.5), (1, 0, 1, 0))
    ]
    metrics = learner.learn(LearnBatch(round=3, policy_version=2, groups=tuple(groups))).metrics
    assert metrics["stale_groups_dropped"] == 2 and metrics["max_staleness_seen"] == 2
    assert metrics["groups_pool"] == 2 and metrics["steps"] == 1
    assert metrics["sampling/sampling_logp_difference/mean"] == pytest.approx(0.5, abs=1e-3)
    assert metrics["importance_sampling_off"] == 0.0
