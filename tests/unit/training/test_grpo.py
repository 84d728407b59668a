import math

import pytest
import torch

from curriculum.config import GRPOSettings, LearnerConfig, LoraConfig
from curriculum.models import build_char_tokenizer
from curriculum.records import Attempt, Problem
from curriculum.testing.groups import graded_group
from curriculum.training.adapter import AdapterState
from curriculum.training.batch import Group, LearnBatch
from curriculum.training.grpo import (
    GRPO,
    GroupServer,
    completion_ids,
    difficulty_filter,
)

LORA = LoraConfig(r=4, alpha=8)
K = 4


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    pass


def group(i: int, correct: int, k: int = K) -> Group:
    """Problem i+1=? with `correct` right attempts out of k (right ones first)."""
    return graded_group(i, "R" * correct + "W" * (k - correct))


def test_filter_drops_exactly_the_uniform_groups_and_refills_from_the_pool():
    rates = [0, 2, 4, 1, 3, 0, 2, 1, 4, 3]  # correct out of 4; 0 and 4 are uniform
    pool = [group(i, c) for i, c in enumerate(rates)]
    batch = difficulty_filter(pool, 0.25, 0.75, need=4)
    # The 4 slots go to the first 4 mixed groups; the uniform ones met on the way are dropped,
    # and the groups after the batch filled up are left untouched.
    assert [g.problem.question for g in batch.kept] == ["1+1=?", "3+1=?", "4+1=?", "6+1=?"]
    assert [g.problem.question for g in batch.dropped] == ["0+1=?", "2+1=?", "5+1=?"]
    assert batch.unused == pool[7:]

    everything = difficulty_filter(pool, 0.25, 0.75, need=None)
    assert {g.solve_rate for g in everything.dropped} == {0.0, 1.0}
    assert len(everything.dropped) == 4 and len(everything.kept) == 6 and not everything.unused
    # With 8 samples SwS's band [0.125, 0.875] is exactly "not all right and not all wrong".
    eight = [group(i, c, k=8) for i, c in enumerate([0, 1, 7, 8, 4])]
    assert [g.solve_rate for g in difficulty_filter(eight, 0.125, 0.875, None).kept] == [1 / 8, 7 / 8, 4 / 8]


def test_filter_with_too_few_mixed_groups_keeps_what_there_is():
    pool = [group(0, 0), group(1, 2), group(2, 4)]
    batch = difficulty_filter(pool, 0.25, 0.75, need=3)
    assert [g.problem.question for g in batch.kept] == ["1+1=?"]
    assert len(batch.dropped) == 2 and batch.unused == []


def test_server_hands_back_each_groups_attempts_in_order():
    tokenizer = build_char_tokenizer()
    groups = [group(0, 1), group(1, 3)]
    server = GroupServer(groups, tokenizer, group_size=K)
    prompts = [g.prompt for g in groups for _ in range(K)]  # as TRL's sampler repeats them
    out = server(prompts)
    assert out["reward"] == [1.0, 0, 0, 0, 1.0, 1.0, 1.0, 0]
    texts = [tokenizer.decode(ids, skip_special_tokens=True) for ids in out["completion_ids"]]
    assert texts == [a.completion for g in groups for a in g.attempts]
    assert all(ids[-1] == tokenizer.eos_token_id for ids in out["completion_ids"])  # they stopped at eos
    assert out["prompt_ids"][0] == tokenizer("0+1=?\n")["input_ids"]
    truncated = groups[0].attempts[0].model_copy(update={"num_tokens": len("answer: 1")})
    assert tokenizer.eos_token_id not in completion_ids(truncated, tokenizer)


def test_learn_filters_then_updates_every_lora_parameter(base_path, tmp_path):
    cfg = LearnerConfig(
        learning_rate=1e-2, steps_per_round=2, grpo=GRPOSettings(groups_per_step=2, filter_low=0.25, filter_high=0.75)
    )
    learner = GRPO(
        AdapterState(base_path, LORA, cfg, tmp_path, seed=0), group_size=K, temperature=1.0, max_completion_length=16
    )
    start = {n: p.detach().clone() for n, p in learner.state.model.named_parameters()}
    pool = [group(i, c) for i, c in enumerate([4, 1, 0, 3, 2, 2, 0, 1])]
    outcome = learner.learn(LearnBatch(round=1, policy_version=0, groups=tuple(pool)))
    m = outcome.metrics
    assert outcome.pairs == []
    assert (m["steps"], m["groups_kept"], m["groups_dropped"], m["groups_unused"], m["groups_short"]) == (2, 4, 2, 2, 0)
    assert learner.state.optimizer_steps == 2
    # The reward TRL saw is the verifier grade of the kept groups' attempts: (1 + 3 + 2 + 2) / 16.
    assert m["reward"] == pytest.approx(8 / 16)
    assert math.isfinite(m["loss"])
    trainable = {n for n, p in learner.state.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    changed = {n for n, p in learner.state.model.named_parameters() if not torch.equal(p, start[n])}
    assert changed == trainable
    assert "ref" not in learner.state.model.peft_config  # no TRL reference copy is left in the policy

    # A round where every group is uniform gives GRPO no gradient: nothing is trained.
    before = {n: p.detach().clone() for n, p in learner.state.model.named_parameters()}
    idle = learner.learn(LearnBatch(round=2, policy_version=1, groups=(group(0, 0), group(1, 4))))
    assert idle.metrics["steps"] == 0 and idle.metrics["groups_short"] == 4
    assert all(torch.equal(p, before[n]) for n, p in learner.state.model.named_parameters())


def test_server_hands_back_the_solvers_token_ids_and_logprobs():
    tokenizer = build_char_tokenizer()
    kept = group(0, 1)
    # Token ids as the Solver's engine sampled them (here: not what re-tokenizing the text gives).
    attempts = tuple(
        a.model_copy(
            update={"token_ids": [7, 8 + a.sample_index, tokenizer.eos_token_id], "token_logprobs": [-0.5, -1.0, -0.25]}
        )
        for a in kept.attempts
    )
    server = GroupServer([Group(kept.problem, attempts, kept.prompt)], tokenizer, group_size=K)
    out = server([kept.prompt] * K)
    assert out["completion_ids"] == [[7, 8 + j, tokenizer.eos_token_id] for j in range(K)]
    assert out["logprobs"] == [[-0.5, -1.0, -0.25]] * K
    # One attempt without log-probs (stored before they were kept): TRL gets none for the batch.
    partial = attempts[:-1] + (attempts[-1].model_copy(update={"token_logprobs": []}),)
    assert GroupServer([Group(kept.problem, partial, kept.prompt)], tokenizer, K)([kept.prompt] * K)["logprobs"] is None


def sampled_groups(base_path, shift: float = 0.0) -> list[Group]:
    """Groups of K attempts sampled from the base model by the HF engine (2 of K graded right),
    with the engine's per-token log-probs plus `shift`."""
    from curriculum.engines.hf import HFEngine

    engine = HFEngine.from_pretrained(base_path)
    problems = [Problem(question=f"{i}+1=?", answer=str(i + 1), source="seed") for i in range(4)]
    samples = engine.generate([f"{p.question}\n" for p in problems], n=K, temperature=1.0, max_new_tokens=8, seed=0)
    return [
        Group(
            problem=p,
            prompt=f"{p.question}\n",
            attempts=tuple(
                Attempt(
                    problem_id=p.id,
                    policy_version=0,
                    sample_index=j,
                    round=1,
                    completion=g.text,
                    extracted_answer=None,
                    correct=j < 2,
                    reward=float(j < 2),
                    num_tokens=g.num_tokens,
                    logprob=g.logprob,
                    token_ids=list(g.token_ids),
                    token_logprobs=[lp + shift for lp in g.token_logprobs],
                )
                for j, g in enumerate(per)
            ),
        )
        for p, per in zip(problems, samples)
    ]


def test_trl_corrects_with_the_rollout_logprobs(base_path, tmp_path):
    """The Solver's sampling log-probs reach TRL's importance-sampling correction: sampled by the same
    model they match the trainer's (ratio 1, training proceeds); log-probs 2 nats per token below the
    trainer's give every sequence a ratio above the cap (e^2 > 3), so TRL masks them all and nothing trains."""
    cfg = LearnerConfig(learning_rate=1e-2, steps_per_round=2, grpo=GRPOSettings(groups_per_step=4))

    def learn(groups):
        learner = GRPO(
            AdapterState(base_path, LORA, cfg, tmp_path, seed=0), group_size=K, temperature=1.0, max_completion_length=8
        )
        start = {n: p.detach().clone() for n, p in learner.state.model.named_parameters() if p.requires_grad}
        metrics = learner.learn(LearnBatch(round=1, policy_version=0, groups=tuple(groups))).metrics
        changed = {
            n for n, p in learner.state.model.named_parameters() if p.requires_grad and not torch.equal(p, start[n])
        }
        return metrics, changed, set(start)

    metrics, changed, trainable = learn(sampled_groups(base_path))
    assert metrics["sampling/sampling_logp_difference/mean"] < 1e-4
    assert metrics["sampling/importance_sampling_ratio/mean"] == pytest.approx(1.0, abs=1e-3)
    assert changed == trainable

    metrics, changed, _ = learn(sampled_groups(base_path, shift=-2.0))
    assert metrics["sampling/sampling_logp_difference/mean"] == pytest.approx(2.0, abs=1e-3)
    assert metrics["sampling/importance_sampling_ratio/mean"] == 0.0
    assert changed == set()


def test_a_batch_without_everyones_logprobs_trains_uncorrected_and_says_so(base_path, tmp_path, caplog):
    """TRL takes sampling log-probs for a whole batch or none: one attempt without them (stored by
    an older version) switches the correction off for the round, counted and warned about once."""
    import logging

    cfg = LearnerConfig(learning_rate=1e-2, steps_per_round=1, grpo=GRPOSettings(groups_per_step=4))
    learner = GRPO(
        AdapterState(base_path, LORA, cfg, tmp_path, seed=0), group_size=K, temperature=1.0, max_completion_length=8
    )
    groups = sampled_groups(base_path)
    first = groups[0]
    groups[0] = Group(
        first.problem, (first.attempts[0].model_copy(update={"token_logprobs": []}), *first.attempts[1:]), first.prompt
    )
    with caplog.at_level(logging.WARNING, logger="curriculum.training.grpo"):
        metrics = learner.learn(LearnBatch(round=1, policy_version=0, groups=tuple(groups))).metrics
    assert metrics["importance_sampling_off"] == 1.0 and metrics["attempts_without_logprobs"] == 1.0
    assert "sampling/importance_sampling_ratio/mean" not in metrics and metrics["steps"] == 1
    assert [r.getMessage() for r in caplog.records] == [
        "GRPO round 1: 1 of 16 attempts have no sampling log-probs (stored by an older version?): importance "
        "sampling (learner.grpo.importance_sampling=sequence_mask) is off for this round's batch"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="curriculum.training.grpo"):
        metrics = learner.learn(LearnBatch(round=2, policy_version=0, groups=tuple(sampled_groups(base_path)))).metrics
    assert metrics["importance_sampling_off"] == 0.0 and "sampling/importance_sampling_ratio/mean" in metrics
    assert not caplog.records


def completion_logprob(learner: GRPO, prompt: str, completion: str) -> float:
    """log p(completion + eos | prompt) under the Learner's current policy (adapter on)."""
    tokenizer = learner.state.tokenizer
    prompt_ids = tokenizer(prompt)["input_ids"]
    ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    inputs = torch.tensor([prompt_ids + ids])
    with torch.no_grad():
        logits = learner.state.model(input_ids=inputs).logits[0, len(prompt_ids) - 1 : -1].float()
    return float(torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(ids)[:, None]).sum())


def test_grpo_updates_raise_the_rewarded_completion_and_lower_the_penalised_one(base_path, tmp_path):
    """The direction of an update, not just that one happened: groups where half the attempts say
    the rewarded answer and half the penalised one; after three GRPO steps of the project's Learner
    (TRL's loss on the served attempts) the first is more likely and the second less."""
    cfg = LearnerConfig(
        learning_rate=2e-2, steps_per_round=3, grpo=GRPOSettings(groups_per_step=2, importance_sampling="off")
    )
    learner = GRPO(
        AdapterState(base_path, LORA, cfg, tmp_path, seed=0), group_size=K, temperature=1.0, max_completion_length=16
    )
    problems = [Problem(question=f"{i}+1=?", answer=str(i + 1), source="seed") for i in (3, 5)]
    rewarded = {p.id: f"answer: {p.answer}" for p in problems}
    penalised = {p.id: f"answer: {int(p.answer) + 4}" for p in problems}
    groups = tuple(
        Group(
            problem=p,
            prompt=f"{p.question}\n",
            attempts=tuple(
                Attempt(
                    problem_id=p.id,
                    policy_version=0,
                    sample_index=j,
                    round=1,
                    completion=rewarded[p.id] if j % 2 == 0 else penalised[p.id],
                    extracted_answer=None,
                    correct=j % 2 == 0,
                    reward=float(j % 2 == 0),
                    num_tokens=len(rewarded[p.id] if j % 2 == 0 else penalised[p.id]) + 1,
                )  # + eos
                for j in range(K)
            ),
        )
        for p in problems
    )

    def logprobs() -> dict[str, tuple[float, float]]:
        return {
            p.id: (
                completion_logprob(learner, f"{p.question}\n", rewarded[p.id]),
                completion_logprob(learner, f"{p.question}\n", penalised[p.id]),
            )
            for p in problems
        }

    before = logprobs()
    metrics = learner.learn(LearnBatch(round=1, policy_version=0, groups=groups)).metrics
    after = logprobs()
    assert metrics["steps"] == 3 and metrics["groups_kept"] == 2
    for p in problems:
        (good_before, bad_before), (good_after, bad_after) = before[p.id], after[p.id]
        assert good_after > good_before + 0.1, (p.question, before[p.id], after[p.id])
        assert bad_after < bad_before - 0.1, (p.question, before[p.id], after[p.id])


def test_a_group_split_between_data_parallel_workers_gives_each_attempt_to_one_of_them():
    """TRL's sampler may hand half of a group's k repeats to each of two workers (ray.learner.count=2):
    worker 1 serves the attempts worker 0 did not."""
    tokenizer = build_char_tokenizer()
    groups = [group(0, 1), group(1, 3)]
    server = GroupServer(groups, tokenizer, group_size=K)
    a, b = groups[0].prompt, groups[1].prompt
    rank0 = server.serve([a, a, a])
    rank1 = server.serve([a, b, b, b, b], earlier=[[a, a, a]])
    served = rank0["completion_ids"] + rank1["completion_ids"]
    expected = [completion_ids(x, tokenizer) for g in groups for x in g.attempts]
    assert served == expected
    assert rank0["reward"] + rank1["reward"] == [1.0, 0, 0, 0, 1.0, 1.0, 1.0, 0]
