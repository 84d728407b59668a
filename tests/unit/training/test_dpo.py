import math
from types import SimpleNamespace

import pytest
import torch

from curriculum.config import LearnerConfig, LoraConfig
from curriculum.models import (
    load_adapter,
    load_model_and_tokenizer,
)
from curriculum.records import PreferencePair
from curriculum.training.adapter import OPTIMIZER_FILE, AdapterState, LearnerStateError
from curriculum.training.dpo import DPO

LORA = LoraConfig(r=4, alpha=8)
BETA = 0.1
# One batch holds every pair, so each step sees the same data whatever the shuffle, and
# three epochs give three steps: LoRA's A matrices only get a gradient once B is non-zero.
LEARNER = LearnerConfig(beta=BETA, learning_rate=1e-2, batch_size=6, epochs=3)
PAIRS = [
    PreferencePair(
        problem_id=f"p{i}",
        policy_version=0,
        round=1,
        prompt=f"{i}+{i + 1}=?\n",
        chosen=f"answer: {2 * i + 1}",
        rejected=f"answer: {2 * i + 2}",
    )
    for i in range(6)
]
REWARD_KEYS = ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    pass


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def completion_logps(model, tokenizer, pairs, field):
    """Summed log-probs of each completion (+ eos) after its prompt, computed without TRL."""
    values = []
    with torch.no_grad():
        for pair in pairs:
            prompt = tokenizer(pair.prompt)["input_ids"]
            completion = tokenizer(getattr(pair, field) + tokenizer.eos_token)["input_ids"]
            logits = model(torch.tensor([prompt + completion])).logits[0]
            logprobs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
            values.append(logprobs.gather(1, torch.tensor(completion)[:, None]).sum())
    return torch.stack(values)


def chosen_token_nll(model, tokenizer, pairs):
    """Mean NLL over every chosen completion token of the batch (TRL's "sft" loss)."""
    total = -completion_logps(model, tokenizer, pairs, "chosen").sum()
    tokens = sum(len(tokenizer(p.chosen + tokenizer.eos_token)["input_ids"]) for p in pairs)
    return float(total) / tokens


@pytest.fixture(scope="module")
def run(base_path, tmp_path_factory):
    """Two rounds on one Learner, with what the tests need recorded along the way."""
    learner = DPO(AdapterState(base_path, LORA, LEARNER, tmp_path_factory.mktemp("work"), seed=0))
    start = snapshot(learner.state.model)
    first = learner.update(PAIRS, round=1)
    first_log, steps_after_first = learner.state.last_log_history, learner.state.optimizer_steps
    after_first = snapshot(learner.state.model)
    # What round 2's first step must report if its reference is the base model (adapter off).
    policy = completion_logps(learner.state.model, learner.state.tokenizer, PAIRS, "chosen")
    with learner.state.model.disable_adapter():
        base = completion_logps(learner.state.model, learner.state.tokenizer, PAIRS, "chosen")
    expected_reward = float(BETA * (policy - base).mean())
    second = learner.update(PAIRS, round=2)
    return SimpleNamespace(
        learner=learner,
        start=start,
        after_first=after_first,
        first=first,
        second=second,
        first_log=first_log,
        second_log=learner.state.last_log_history,
        steps_after_first=steps_after_first,
        expected_reward=expected_reward,
    )


def test_update_trains_every_lora_parameter_and_leaves_the_base_alone(run):
    trainable = {name for name, p in run.learner.state.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    changed = {name for name, value in run.after_first.items() if not torch.equal(value, run.start[name])}
    assert changed == trainable


def test_metrics_are_finite_and_cover_every_step(run):
    for metrics in (run.first, run.second):
        assert metrics["steps"] == 3 and metrics["pairs"] == len(PAIRS) and metrics["seconds"] > 0
        assert all(math.isfinite(metrics[key]) for key in REWARD_KEYS)
    assert len(run.first_log) == 3
    assert run.first["rewards/margins"] == pytest.approx(sum(e["rewards/margins"] for e in run.first_log) / 3)
    assert run.second["rewards/margins"] > run.first["rewards/margins"]  # it keeps learning the same pairs


def test_optimizer_state_carries_over_between_rounds(run):
    assert run.steps_after_first == 3
    assert run.learner.state.optimizer_steps == 6


def test_reference_of_every_round_is_the_base_model(run):
    # Round 1 starts with B = 0, so policy == base and the first step's rewards are exactly 0.
    assert run.first_log[0]["rewards/chosen"] == 0.0
    # Round 2 starts from a trained adapter: a reference equal to that adapter would give 0 again.
    assert abs(run.expected_reward) > 1e-4
    assert run.second_log[0]["rewards/chosen"] == pytest.approx(run.expected_reward, rel=1e-3)


def test_rpo_alpha_adds_the_nll_of_the_chosen_completion(base_path, tmp_path):
    alpha = 0.5
    cfg = LEARNER.model_copy(update={"rpo_alpha": alpha, "epochs": 1.0})
    learner = DPO(AdapterState(base_path, LORA, cfg, tmp_path, seed=0))
    nll = chosen_token_nll(learner.state.model, learner.state.tokenizer, PAIRS)
    learner.update(PAIRS, round=1)
    # First step: policy == reference, so the DPO term is log 2.
    assert learner.state.last_log_history[0]["loss"] == pytest.approx(math.log(2) + alpha * nll, rel=1e-4)


def test_zero_pairs_is_a_no_op(run):
    before, steps = snapshot(run.learner.state.model), run.learner.state.optimizer_steps
    assert run.learner.update([], round=3) == {"steps": 0}
    after = snapshot(run.learner.state.model)
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert run.learner.state.optimizer_steps == steps


def test_publish_and_restore_round_trip_adapter_and_optimizer(run, base_path, tmp_path):
    learner = run.learner
    path = learner.state.publish(2, tmp_path / "v2").uri
    files = {p.name for p in (tmp_path / "v2").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", OPTIMIZER_FILE} <= files
    assert "ref" not in files  # TRL's reference copy is not part of the policy
    assert [p.name for p in tmp_path.iterdir()] == ["v2"]  # no temporary folder left behind

    inputs = torch.tensor([learner.state.tokenizer("3+4=?\nanswer: 7")["input_ids"]])
    with torch.no_grad():
        expected = learner.state.model(inputs).logits
    restored = DPO(AdapterState(base_path, LORA, LEARNER, tmp_path / "work", seed=1))  # other LoRA init
    assert restored.state.restore(path) == 2
    with torch.no_grad():
        assert torch.allclose(restored.state.model(inputs).logits, expected, atol=1e-6)
    # The Solver's way of loading a published version sees the same policy.
    base, _ = load_model_and_tokenizer(base_path)
    with torch.no_grad():
        assert torch.allclose(load_adapter(base, path).eval()(inputs).logits, expected, atol=1e-6)

    saved, loaded = learner.state.optimizer.state_dict(), restored.state.optimizer.state_dict()
    assert restored.state.optimizer_steps == learner.state.optimizer_steps == 6
    assert saved["state"].keys() == loaded["state"].keys()
    for index, state in saved["state"].items():
        assert torch.equal(state["exp_avg"], loaded["state"][index]["exp_avg"])
        assert torch.equal(state["exp_avg_sq"], loaded["state"][index]["exp_avg_sq"])

    learner.state.publish(3, path)  # publishing over an existing folder replaces it
    assert restored.state.restore(path) == 3


def test_restore_refuses_what_it_cannot_load(run, base_path, tmp_path):
    with pytest.raises(LearnerStateError, match="not a published Learner folder"):
        run.learner.state.restore(tmp_path)
    path = run.learner.state.publish(2, tmp_path / "v2").uri
    other = DPO(AdapterState(base_path, LoraConfig(r=2, alpha=4), LEARNER, tmp_path / "work", seed=0))
    with pytest.raises(LearnerStateError, match="another shape"):
        other.state.restore(path)


def test_a_restored_learner_continues_like_the_original(base_path, tmp_path):
    original = DPO(AdapterState(base_path, LORA, LEARNER, tmp_path / "a", seed=0))
    original.update(PAIRS, round=1)
    path = original.state.publish(1, tmp_path / "v1").uri
    resumed = DPO(AdapterState(base_path, LORA, LEARNER, tmp_path / "b", seed=1))
    resumed.state.restore(path)
    original.update(PAIRS, round=2)
    resumed.update(PAIRS, round=2)
    assert resumed.state.optimizer_steps == original.state.optimizer_steps == 6
    expected = dict(original.state.model.named_parameters())
    for name, param in resumed.state.model.named_parameters():
        assert torch.allclose(param, expected[name], atol=1e-6), name
