import random

import pytest
import torch

from curriculum.config import Config, TinyModelConfig
from curriculum.models import (
    build_char_tokenizer,
    build_tiny_model,
    is_saved_model,
    prompt_for,
)
from curriculum.records import Problem
from curriculum.training.pretrain import pretrain
from curriculum.training.sft import (
    PackingCollator,
    build_sft_dataset,
    make_sft_trainer,
    sft_args,
)

SMALL = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64)


def addition(a: int, b: int) -> Problem:
    """A hand-made addition problem with a column-by-column trace."""
    top, bottom, carry, lines = str(a)[::-1], str(b)[::-1], 0, []
    for i in range(max(len(top), len(bottom))):
        x = int(top[i]) if i < len(top) else 0
        y = int(bottom[i]) if i < len(bottom) else 0
        lines.append(f"{x}+{y}+{carry}={x + y + carry}")
        carry = (x + y + carry) // 10
    return Problem(
        question=f"{a}+{b}=?",
        answer=str(a + b),
        solution="\n".join(lines) + f"\nanswer: {a + b}",
        source="seed",
        family="add",
        level=max(len(str(a)), len(str(b))),
    )


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer()


@pytest.fixture(scope="module")
def problems():
    rng = random.Random(0)
    return [addition(rng.randrange(100), rng.randrange(100)) for _ in range(64)]


def masked_loss(model, tokenizer, problems) -> float:
    """Mean completion-token loss, computed independently of the trainer."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for p in problems:
            prompt = tokenizer(prompt_for(p.question, tokenizer))["input_ids"]
            completion = tokenizer(p.solution)["input_ids"] + [tokenizer.eos_token_id]
            logits = model(torch.tensor([prompt + completion])).logits[0]
            logprobs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
            total -= float(logprobs.gather(1, torch.tensor(completion)[:, None]).sum())
            count += len(completion)
    return total / count


def test_dataset_is_prompt_completion_with_eos(tokenizer, problems):
    dataset = build_sft_dataset(problems[:3], tokenizer, weights=[1.0, 0.5, 2.0])
    row = dataset[0]
    assert row["prompt"] == problems[0].question + "\n"
    assert row["completion"] == problems[0].solution + tokenizer.eos_token
    assert dataset["weight"] == [1.0, 0.5, 2.0]
    no_trace = Problem(question="1+1=?", answer="2", source="seed")
    with pytest.raises(ValueError, match="no solution"):
        build_sft_dataset([no_trace], tokenizer)


def test_trainer_masks_the_prompt_out_of_the_loss(tokenizer, problems, tmp_path):
    model = build_tiny_model(SMALL, tokenizer)
    args = sft_args(tmp_path, learning_rate=1e-3, batch_size=8, epochs=1, warmup_ratio=0.0, seed=0, max_steps=1)
    trainer = make_sft_trainer(model, tokenizer, build_sft_dataset(problems[:4], tokenizer), args)
    row = trainer.train_dataset[0]
    prompt_length = len(problems[0].question) + 1
    completion_ids = tokenizer(problems[0].solution)["input_ids"] + [tokenizer.eos_token_id]
    assert row["labels"][:prompt_length] == [-100] * prompt_length
    assert row["labels"][prompt_length:] == completion_ids


def test_packed_batches_give_the_same_loss_and_gradients_as_padded_ones(tokenizer, problems):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    torch.manual_seed(0)
    model = build_tiny_model(SMALL, tokenizer)
    examples = []
    mixed = [addition(3, 4), addition(123456, 98765), addition(5, 60), addition(7777777, 1), addition(42, 9)]
    for p in mixed + problems[:6]:
        prompt = tokenizer(prompt_for(p.question, tokenizer))["input_ids"]
        completion = tokenizer(p.solution + tokenizer.eos_token)["input_ids"]
        examples.append({"input_ids": prompt + completion, "labels": [-100] * len(prompt) + completion})
    padded = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)(examples)
    packed = PackingCollator(tokenizer.pad_token_id, row_length=64)(examples)
    assert packed["input_ids"].numel() < padded["input_ids"].numel()
    assert int((packed["labels"] != -100).sum()) == int((padded["labels"] != -100).sum())
    weight = model.model.layers[0].self_attn.q_proj.weight
    results = []
    for batch in (padded, packed):
        loss = model(**batch, use_cache=False).loss  # the trainer passes use_cache=False too
        results.append((loss.item(), torch.autograd.grad(loss, weight)[0]))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-5)
    assert torch.allclose(results[1][1], results[0][1], atol=1e-7)


def test_a_few_sft_steps_change_every_parameter_and_lower_the_loss(tokenizer, problems, tmp_path):
    torch.manual_seed(0)
    model = build_tiny_model(SMALL, tokenizer)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    loss_before = masked_loss(model, tokenizer, problems)
    args = sft_args(tmp_path, learning_rate=1e-2, batch_size=16, epochs=1, warmup_ratio=0.0, seed=0, max_steps=12)
    make_sft_trainer(model, tokenizer, build_sft_dataset(problems, tokenizer), args).train()
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p.detach(), before[name])]
    assert unchanged == []
    assert masked_loss(model, tokenizer, problems) < 0.7 * loss_before


def test_pretrain_builds_the_base_model_once_then_reuses_it(tmp_path, capsys):
    config = Config.model_validate(
        {
            "model": {"cache_dir": str(tmp_path), "tiny": SMALL.model_dump()},
            "world": {"families": ["add", "sub"], "max_level": 2, "heldout_per_level": 2},
            "pretrain": {"levels": [1], "examples": 32, "batch_size": 16},
            "evaluation": {"max_new_tokens": 24},
        }
    )
    first = pretrain(config, progress=False)
    assert first.trained and is_saved_model(first.path)
    assert first.evaluation.n == 2 * 2 * 2  # families x levels x heldout_per_level
    second = pretrain(config, progress=False)
    assert not second.trained and second.path == first.path
    assert second.evaluation.by_family_level == first.evaluation.by_family_level
    out = capsys.readouterr().out
    assert "skipping pretraining" in out and "L2" in out
