"""Retention (learner.retention, training/retention.py): a problem solved k of k times gives DPO and
GRPO nothing, so its correct attempt is replayed as an NLL anchor in every step of any learner;
a KL term to the base on those tokens; a run-long schedule; solved replay split by level."""

import pytest
import torch

from curriculum.config import LearnerConfig, LoraConfig, RetentionConfig
from curriculum.curricula.selection import interleave_levels, select_round_problems
from curriculum.records import Problem, SolveRate
from curriculum.roles.learner import Learner
from curriculum.testing.groups import graded_group as group
from curriculum.training.adapter import AdapterState
from curriculum.training.batch import LearnBatch
from curriculum.training.dpo import DPO
from curriculum.training.grpo import GRPO
from curriculum.training.retention import AnchorLoss, anchor_examples
from curriculum.training.sft import SFT


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    pass


MIXED = group(1, "RWWR")
MASTERED = group(3, "RRRR")


def test_anchors_are_the_first_correct_attempt_of_each_mastered_group():
    anchors = anchor_examples([MIXED, group(2, "WWWW"), MASTERED], min_solve_rate=1.0)
    assert [(a.problem_id, a.completion) for a in anchors] == [(MASTERED.problem.id, "answer: 4")]
    assert len(anchor_examples([MIXED, MASTERED], min_solve_rate=0.5)) == 2


def _learner(algorithm: str, base_path, tmp_path, retention: RetentionConfig, **settings):
    cfg = LearnerConfig(
        algorithm=algorithm, learning_rate=1e-2, batch_size=4, steps_per_round=2, retention=retention, **settings
    )
    state = AdapterState(base_path, LoraConfig(r=2, alpha=4), cfg, tmp_path, seed=0, rounds=2)
    if algorithm == "grpo":
        return Learner(GRPO(state, group_size=4, temperature=1.0, max_completion_length=16))
    return Learner(DPO(state) if algorithm == "dpo" else SFT(state))


def _adapter(learner) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in learner.state.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("algorithm", ["dpo", "grpo", "sft"])
def test_a_k_of_k_problem_moves_every_learner_only_through_its_anchor(algorithm, base_path, tmp_path):
    batch = LearnBatch(round=1, policy_version=0, groups=(MIXED, MASTERED))
    plain = _learner(algorithm, base_path, tmp_path / "plain", RetentionConfig())
    plain_metrics = plain.learn(batch).metrics
    anchored = _learner(algorithm, base_path, tmp_path / "anchored", RetentionConfig(anchor_weight=5.0))
    metrics = anchored.learn(batch).metrics
    assert "retention/anchors" not in plain_metrics
    assert metrics["retention/anchors"] == 1 and metrics["retention/anchor_batches"] == metrics["steps"] == 2
    assert metrics["retention/anchor_nll"] > 0
    different = [n for n, p in _adapter(anchored).items() if not torch.equal(p, _adapter(plain)[n])]
    assert different, "the anchored 4/4 problem changed nothing"


def test_the_anchor_gives_a_nonzero_gradient_for_a_problem_solved_every_time(base_path, tmp_path):
    learner = _learner("dpo", base_path, tmp_path, RetentionConfig(anchor_weight=1.0))
    # DPO builds no pair from a problem with no wrong attempt: without the anchor it has no gradient.
    anchor = learner.state.anchor_for(LearnBatch(round=1, policy_version=0, groups=(MASTERED,)), batch_size=2)
    learner.state.model.train()
    anchor(learner.state.model).backward()
    grads = [p.grad for p in learner.state.model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_replayed_successes_are_anchors_only(base_path, tmp_path):
    # An earlier round's success (learner.retention.replay_per_level): one correct attempt.
    replayed = group(5, "R")
    plain = LearnBatch(round=2, policy_version=1, groups=(MIXED,))
    with_replay = LearnBatch(round=2, policy_version=1, groups=(MIXED,), replay=(replayed,))
    retention = RetentionConfig(anchor_weight=5.0, replay_per_level=1)
    outcome = _learner("dpo", base_path, tmp_path / "replay", retention).learn(with_replay)
    assert outcome.metrics["retention/anchors"] == 1  # MIXED (2 of 4) is below anchor_min_solve_rate 1.0
    assert outcome.pairs == _learner("dpo", base_path, tmp_path / "plain", retention).learn(plain).pairs
    assert "retention/anchors" not in _learner("dpo", base_path, tmp_path / "none", retention).learn(plain).metrics


def test_replay_without_an_anchor_weight_is_a_config_error():
    with pytest.raises(ValueError, match="replay_per_level=8 replays anchors, but anchor_weight and kl_weight"):
        RetentionConfig(replay_per_level=8)
    assert RetentionConfig(replay_per_level=8, kl_weight=1.0).replay_per_level == 8


def test_kl_to_the_base_is_zero_for_the_base_policy_and_grows_as_the_adapter_moves(base_path, tmp_path):
    learner = _learner("sft", base_path, tmp_path, RetentionConfig(kl_weight=1.0))
    anchor = AnchorLoss.build(
        anchor_examples([MASTERED], 1.0),
        learner.state.tokenizer,
        learner.state.learner_cfg.retention,
        batch_size=1,
        seed=0,
    )
    with torch.no_grad():
        anchor(learner.state.model)  # LoRA's B starts at zero: the policy is the base
        assert anchor.metrics()["retention/anchor_kl"] == pytest.approx(0.0, abs=1e-6)
        for name, p in learner.state.model.named_parameters():
            if "lora_B" in name:
                p.add_(0.5)
        anchor(learner.state.model)
    assert anchor.totals["kl"] > 1e-3


def test_a_run_long_schedule_does_not_restart_and_is_restored_where_it_stood(base_path, tmp_path):
    batch = LearnBatch(round=1, policy_version=0, groups=(MIXED, group(2, "WWWW")))
    learner = _learner("sft", base_path, tmp_path / "a", RetentionConfig(), lr_schedule="cosine_run")
    learner.learn(batch)  # 2 of the run's 4 steps: half way down one cosine
    lr = learner.state.optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(1e-2 * 0.5, rel=1e-6)
    learner.state.publish(1, tmp_path / "v1")
    restored = _learner("sft", base_path, tmp_path / "b", RetentionConfig(), lr_schedule="cosine_run")
    restored.state.restore(tmp_path / "v1")
    assert restored.state.optimizer.param_groups[0]["lr"] == pytest.approx(lr)
    assert restored.state.scheduler.last_epoch == learner.state.scheduler.last_epoch == 2
    with pytest.raises(ValueError, match="cosine_run needs learner.steps_per_round"):
        LearnerConfig(lr_schedule="cosine_run")


def _problem(i: int, level: int) -> Problem:
    return Problem(question=f"q{i}", answer="1", source="seed", level=level)


def test_solved_replay_by_level_takes_each_level_in_turn():
    solved = [_problem(i, 1) for i in range(6)] + [_problem(10 + i, 2) for i in range(2)] + [_problem(20, 3)]
    assert [p.level for p in interleave_levels(solved)] == [1, 2, 3, 1, 2, 1, 1, 1, 1]
    rates = {p.id: SolveRate(8, 8, 1.0) for p in solved}
    picked = select_round_problems(
        solved, rates, 4, 0.25, 0.75, 0, fresh_fraction=0, solved_fraction=1.0, solved_by_level=True
    )
    assert sorted(p.level for p in picked) == [1, 1, 2, 3]
    at_random = select_round_problems(solved, rates, 4, 0.25, 0.75, 0, fresh_fraction=0, solved_fraction=1.0)
    assert len(at_random) == 4
