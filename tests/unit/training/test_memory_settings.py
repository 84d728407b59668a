"""learner.micro_batch_size and learner.gradient_checkpointing (and the Generator's own): the batch
arithmetic, the config's one-line errors, each knob reaching the TRL trainer of every learner, and a
step split into micro-batches giving the same adapter as the whole step."""

import random

import pytest
import torch
from pydantic import ValidationError
from toy_models import SMALL

from curriculum.config import Config, GeneratorConfig, GRPOSettings, LearnerConfig, LoraConfig
from curriculum.records import PreferencePair, Problem
from curriculum.roles.generator import Generator
from curriculum.testing.groups import graded_group
from curriculum.training import weighted_sft
from curriculum.training.adapter import AdapterState
from curriculum.training.batch import Group, LearnBatch
from curriculum.training.dpo import DPO
from curriculum.training.grpo import GRPO
from curriculum.training.sft import SFT
from curriculum.training.trl_args import BatchSplitError, batch_args

LORA = LoraConfig(r=4, alpha=8)
PAIRS = [
    PreferencePair(
        problem_id=f"p{i}",
        policy_version=0,
        round=1,
        prompt=f"{i}+{i + 1}=?\n",
        chosen=f"answer: {2 * i + 1}",
        rejected=f"answer: {2 * i + 2}",
    )
    for i in range(8)
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    pass


# ----------------------------------------------------------------------------- the arithmetic


def test_a_step_splits_into_micro_batches_and_workers():
    assert batch_args(16) == {"per_device_train_batch_size": 16, "gradient_accumulation_steps": 1}
    assert batch_args(16, 4) == {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 4}
    assert batch_args(16, None, world_size=2) == {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 1}
    assert batch_args(16, 2, world_size=2) == {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4}
    # A micro-batch at least a worker's share of the step: the share in one pass (a recipe scaled down)
    assert batch_args(16, 32) == {"per_device_train_batch_size": 16, "gradient_accumulation_steps": 1}
    assert batch_args(16, 8, world_size=4) == {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 1}


def test_a_step_that_does_not_split_is_refused_in_one_line_naming_the_key():
    with pytest.raises(BatchSplitError, match=r"learner\.micro_batch_size=3 does not divide .*16") as error:
        batch_args(16, 3)
    assert "\n" not in str(error.value)
    with pytest.raises(BatchSplitError, match="does not split over ray.learner.count=3 data-parallel workers"):
        batch_args(16, None, world_size=3)
    with pytest.raises(BatchSplitError, match=r"learner\.micro_batch_size=3 does not divide .* 8 each"):
        batch_args(16, 3, world_size=2)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"learner": {"batch_size": 16, "micro_batch_size": 6}}, r"learner\.micro_batch_size=6 must divide"),
        (
            {"learner": {"algorithm": "grpo", "micro_batch_size": 5, "grpo": {"groups_per_step": 4}}},
            r"GRPO step of .* = 4 x 8 = 32 sequences",
        ),
        ({"generator": {"batch_size": 16, "micro_batch_size": 5}}, r"generator\.micro_batch_size=5 must divide"),
    ],
)
def test_the_config_refuses_a_micro_batch_that_does_not_divide_the_step(overrides, message):
    with pytest.raises(ValidationError, match=message):
        Config.model_validate(overrides)


def test_grpo_micro_batches_may_split_a_group_and_one_above_the_step_is_the_step():
    config = Config.model_validate({"learner": {"algorithm": "grpo", "micro_batch_size": 4}})
    assert config.learner.micro_batch_size == 4  # 4 groups x 8 attempts = 32 sequences per step
    # a GPU recipe scaled down for a CPU test: steps of 2 x 4 = 8 sequences, passes of up to 16
    Config.model_validate(
        {
            "solver": {"attempts": 4},
            "learner": {"algorithm": "grpo", "micro_batch_size": 16, "grpo": {"groups_per_step": 2}},
        }
    )


# ----------------------------------------------------------------------------- each knob reaches TRL


def recorded(state: AdapterState) -> list:
    """The trainers `state` runs, kept for the test to read."""
    seen: list = []
    run = state.run_trainer

    def keep(trainer):
        seen.append(trainer)
        return run(trainer)

    state.run_trainer = keep  # type: ignore[method-assign]
    return seen


MEMORY = {"micro_batch_size": 2, "gradient_checkpointing": True}


def assert_memory_settings(args, per_device: int, accumulation: int) -> None:
    assert args.per_device_train_batch_size == per_device
    assert args.gradient_accumulation_steps == accumulation
    assert args.gradient_checkpointing is True


def test_dpo_and_sft_trainers_get_the_knobs(base_path, tmp_path):
    cfg = LearnerConfig(batch_size=8, epochs=1, **MEMORY)
    dpo = DPO(AdapterState(base_path, LORA, cfg, tmp_path / "dpo", seed=0))
    trainers = recorded(dpo.state)
    dpo.update(PAIRS, round=1)
    assert_memory_settings(trainers[0].args, 2, 4)
    assert trainers[0].state.global_step == 1  # 8 pairs = one optimizer step of 4 micro-batches
    assert dpo.state.model.get_base_model().is_gradient_checkpointing

    sft = SFT(AdapterState(base_path, LORA, cfg, tmp_path / "sft", seed=0))
    trainers = recorded(sft.state)
    sft.update_examples([p.prompt for p in PAIRS], [p.chosen for p in PAIRS], round=1)
    assert_memory_settings(trainers[0].args, 2, 4)
    assert trainers[0].state.global_step == 1


def group(i: int, outcomes: str = "RRWW") -> Group:
    """Problem i+1=?; outcomes like "RWWR": attempt j right (R) or wrong (W)."""
    return graded_group(i, outcomes)


def test_grpo_trainer_gets_the_knobs(base_path, tmp_path):
    cfg = LearnerConfig(steps_per_round=2, grpo=GRPOSettings(groups_per_step=2), **MEMORY)
    learner = GRPO(AdapterState(base_path, LORA, cfg, tmp_path, seed=0), 4, 1.0, 16)
    trainers = recorded(learner.state)
    start = {n: p.detach().clone() for n, p in learner.state.model.named_parameters() if p.requires_grad}
    outcome = learner.learn(LearnBatch(round=1, policy_version=0, groups=tuple(group(i) for i in range(4))))
    args = trainers[0].args
    assert_memory_settings(args, 2, 4)  # 2 groups x 4 attempts = 8 sequences per step, 2 per pass
    assert args.steps_per_generation == 2 * 4  # the round's two steps, in micro-batches
    assert outcome.metrics["steps"] == 2 and learner.state.optimizer_steps == 2
    assert all(not torch.equal(p, start[n]) for n, p in learner.state.model.named_parameters() if n in start)


def test_grpo_with_fewer_groups_than_a_step_takes_a_micro_batch_that_divides_it(base_path, tmp_path):
    # A step of 4 groups x 4 = 16 sequences in passes of 8; a round with 3 groups has steps of 12 (passes of 6).
    cfg = LearnerConfig(epochs=1, micro_batch_size=8, grpo=GRPOSettings(groups_per_step=4))
    learner = GRPO(AdapterState(base_path, LORA, cfg, tmp_path, seed=0), 4, 1.0, 16)
    trainers = recorded(learner.state)
    learner.learn(LearnBatch(round=1, policy_version=0, groups=tuple(group(i) for i in range(3))))
    assert (trainers[0].args.per_device_train_batch_size, trainers[0].args.gradient_accumulation_steps) == (6, 2)


def test_generator_trainer_gets_its_knobs(tmp_path, monkeypatch):
    made: list = []
    make = weighted_sft.make_weighted_sft_trainer

    def keep(*args, **kwargs):
        made.append(make(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(weighted_sft, "make_weighted_sft_trainer", keep)
    cfg = GeneratorConfig(batch_size=8, epochs=1, **MEMORY)
    generator = Generator(None, SMALL, cfg, tmp_path, seed=0)
    problems = [Problem(question=f"{i}+{i}=?", answer=str(2 * i), source="seed") for i in range(8)]
    metrics = generator.train([(p, q, 0.5) for p, q in zip(problems, reversed(problems))])
    assert_memory_settings(made[0].args, 2, 4)
    assert metrics["steps"] == 1


# ----------------------------------------------------------------------------- the same update


def adapter_change(base_path, tmp_path, algorithm, **memory) -> dict[str, torch.Tensor]:
    """How two steps (one per round) on the same 8 examples change the adapter. Plain SGD, not the
    run's AdamW: Adam's update does not change when the gradient is scaled, so it would hide a loss
    that was not divided by the number of micro-batches."""
    cfg = LearnerConfig(batch_size=8, epochs=1, **memory)
    state = AdapterState(base_path, LORA, cfg, tmp_path, seed=0)
    start = {n: p.detach().clone() for n, p in state.model.named_parameters() if p.requires_grad}
    state.optimizer = torch.optim.SGD([p for p in state.model.parameters() if p.requires_grad], lr=0.5)
    rng = random.Random(0)
    completions = [f"answer: {rng.randrange(100)}" + "!" * rng.randrange(6) for _ in PAIRS]  # unequal lengths
    for round in (1, 2):  # LoRA's A matrices get no gradient while B is zero (the first step)
        if algorithm == "dpo":
            DPO(state).update(PAIRS, round=round)
        else:
            SFT(state).update_examples([p.prompt for p in PAIRS], completions, round=round)
    return {n: p.detach() - start[n] for n, p in state.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("algorithm", ["dpo", "sft"])
def test_micro_batches_and_checkpointing_give_the_same_adapter_as_the_whole_step(base_path, tmp_path, algorithm):
    whole = adapter_change(base_path, tmp_path / "whole", algorithm)
    split = adapter_change(base_path, tmp_path / "split", algorithm, micro_batch_size=2, gradient_checkpointing=True)
    assert all(bool(change.abs().max() > 0) for change in whole.values())  # every LoRA matrix trained
    assert max(float(change.abs().max()) for change in whole.values()) > 1e-3
    for name, change in whole.items():  # measured: differences up to 2e-8 (float32 sums in another order)
        torch.testing.assert_close(split[name], change, rtol=1e-3, atol=1e-7)


def anchored_change(base_path, tmp_path, algorithm, **memory) -> dict[str, torch.Tensor]:
    """How one round with the retention anchor changes the adapter (plain SGD, see `adapter_change`):
    4 mixed groups (8 DPO pairs, 4 SFT examples) and 4 mastered ones (anchors of equal length, so a
    step's anchor NLL is the same whether its anchors come in one pass or several)."""
    from curriculum.config import RetentionConfig
    from curriculum.roles.learner import Learner

    groups = tuple(group(i, "RWWR") for i in range(1, 5)) + tuple(group(i, "RRRR") for i in range(5, 9))
    cfg = LearnerConfig(
        algorithm=algorithm, batch_size=4, epochs=1, retention=RetentionConfig(anchor_weight=2.0), **memory
    )
    state = AdapterState(base_path, LORA, cfg, tmp_path, seed=0)
    state.optimizer = torch.optim.SGD([p for p in state.model.parameters() if p.requires_grad], lr=0.5)
    start = {n: p.detach().clone() for n, p in state.model.named_parameters() if p.requires_grad}
    learner = Learner(DPO(state) if algorithm == "dpo" else SFT(state))
    metrics = learner.learn(LearnBatch(round=1, policy_version=0, groups=groups)).metrics
    assert metrics["retention/anchors"] == 4 and metrics["steps"] == 2
    return {n: p.detach() - start[n] for n, p in state.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("algorithm", ["dpo", "sft"])
def test_the_retention_anchor_weighs_the_same_in_micro_batches(base_path, tmp_path, algorithm):
    # SFT's loss is normalised over the whole step (transformers does not divide it by the passes),
    # DPO's per pass (transformers divides it): the anchor's term must follow either way.
    whole = anchored_change(base_path, tmp_path / "whole", algorithm)
    split = anchored_change(base_path, tmp_path / "split", algorithm, micro_batch_size=2)
    assert max(float(change.abs().max()) for change in whole.values()) > 1e-3
    for name, change in whole.items():
        torch.testing.assert_close(split[name], change, rtol=1e-3, atol=1e-7)
