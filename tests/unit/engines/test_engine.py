import math

import pytest
import torch

from curriculum.config import LoraConfig, TinyModelConfig
from curriculum.engines.hf import HFEngine
from curriculum.models import attach_lora, build_char_tokenizer, build_tiny_model

SMALL = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64)
PROMPTS = ["1+1=?\n", "12+345=?\n", "7\n", "Ana has 3 pens.\n"]


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer()


@pytest.fixture(scope="module")
def engine(tokenizer):
    torch.manual_seed(0)
    return HFEngine(build_tiny_model(SMALL, tokenizer), tokenizer, batch_size=16)


def sequence_logprob(model, tokenizer, prompt: str, completion_ids: list[int], temperature: float = 1.0) -> float:
    """Sum of log p(completion | prompt) from one plain forward pass."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0].float() / temperature, dim=-1)
    return sum(float(logprobs[len(prompt_ids) + i - 1, token]) for i, token in enumerate(completion_ids))


def test_n_samples_per_prompt_with_sane_counts_and_logprobs(engine):
    out = engine.generate(PROMPTS, n=3, temperature=1.0, max_new_tokens=12, seed=1)
    assert [len(samples) for samples in out] == [3] * len(PROMPTS)
    for samples in out:
        for sample in samples:
            assert 1 <= sample.num_tokens <= 12
            assert math.isfinite(sample.logprob) and sample.logprob < 0
            assert sample.finished or sample.num_tokens == 12
            assert len(sample.text) <= sample.num_tokens  # one char per token, the stop token adds none


def test_same_seed_same_samples_other_seed_other_samples(engine):
    first = engine.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=10, seed=7)
    again = engine.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=10, seed=7)
    other = engine.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=10, seed=8)
    assert first == again
    assert first != other


def test_generation_does_not_disturb_the_global_rng(engine):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    engine.generate(PROMPTS[:1], n=2, max_new_tokens=4, seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_greedy_is_argmax_decoding_with_model_logprobs(engine, tokenizer):
    out = engine.generate(PROMPTS, n=3, temperature=0, max_new_tokens=8)
    for prompt, samples in zip(PROMPTS, out):
        assert len({s.text for s in samples}) == 1  # greedy: every sample the same
        ids = tokenizer(prompt)["input_ids"]
        expected = []
        for _ in range(8):  # manual argmax decoding, one token at a time
            with torch.no_grad():
                token = int(engine.model(torch.tensor([ids + expected])).logits[0, -1].argmax())
            expected.append(token)
            if token == tokenizer.eos_token_id:
                break
        assert samples[0].num_tokens == len(expected)
        assert samples[0].text == tokenizer.decode(expected, skip_special_tokens=True)
        assert samples[0].logprob == pytest.approx(
            sequence_logprob(engine.model, tokenizer, prompt, expected), abs=1e-3
        )


def test_sampling_logprob_is_under_the_tempered_distribution(engine, tokenizer):
    out = engine.generate(PROMPTS[:2], n=2, temperature=0.7, max_new_tokens=6, seed=3)
    for prompt, samples in zip(PROMPTS, out):
        for sample in samples:
            completion = list(sample.token_ids)
            assert len(completion) == sample.num_tokens
            assert (completion[-1] == tokenizer.eos_token_id) == sample.finished
            expected = sequence_logprob(engine.model, tokenizer, prompt, completion, temperature=0.7)
            assert sample.logprob == pytest.approx(expected, abs=1e-3)


def test_left_padding_does_not_change_greedy_outputs(engine):
    batched = engine.generate(PROMPTS, n=1, temperature=0, max_new_tokens=8, batch_size=16)
    one_by_one = engine.generate(PROMPTS, n=1, temperature=0, max_new_tokens=8, batch_size=1)
    assert [s[0].text for s in batched] == [s[0].text for s in one_by_one]
    for a, b in zip(batched, one_by_one):
        assert a[0].logprob == pytest.approx(b[0].logprob, abs=1e-3)


def test_stops_at_eos(tokenizer):
    """A model trained to answer every prompt with 'ok' stops right after it."""
    torch.manual_seed(0)
    model = build_tiny_model(SMALL, tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    target = tokenizer("ok")["input_ids"] + [tokenizer.eos_token_id]
    batch = [tokenizer(p)["input_ids"] for p in ("1+1=?\n", "9\n", "ab\n", "x\n")]
    for _ in range(60):
        for prompt in batch:
            ids = torch.tensor([prompt + target])
            labels = torch.tensor([[-100] * len(prompt) + target])
            model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    engine = HFEngine(model, tokenizer)
    out = engine.generate(["1+1=?\n", "9\n"], n=2, temperature=0, max_new_tokens=10)
    for samples in out:
        assert samples[0].text == "ok"
        assert samples[0].num_tokens == 3 and samples[0].finished


def test_load_adapter_switches_policy_and_back(tokenizer, tmp_path):
    torch.manual_seed(0)
    base = build_tiny_model(SMALL, tokenizer)
    peft_model = attach_lora(build_tiny_model(SMALL, tokenizer), LoraConfig(r=4, alpha=8))
    peft_model.base_model.model.load_state_dict(base.state_dict(), strict=False)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 1.0)
    peft_model.save_pretrained(tmp_path / "v1")

    engine = HFEngine(base, tokenizer)
    before = engine.generate(PROMPTS, n=1, temperature=0, max_new_tokens=8)
    engine.load_adapter(tmp_path / "v1")
    assert engine.adapter_path == str(tmp_path / "v1")
    adapted = engine.generate(PROMPTS, n=1, temperature=0, max_new_tokens=8)
    assert adapted != before
    engine.load_adapter(tmp_path / "v1")  # loading again applies it once, not twice
    assert engine.generate(PROMPTS, n=1, temperature=0, max_new_tokens=8) == adapted
    engine.load_adapter(None)
    assert engine.adapter_path is None
    assert engine.generate(PROMPTS, n=1, temperature=0, max_new_tokens=8) == before


def test_bad_sampling_arguments_name_the_argument(engine):
    with pytest.raises(ValueError, match="top_p"):
        engine.generate(PROMPTS, top_p=0.0)
    with pytest.raises(ValueError, match="temperature"):
        engine.generate(PROMPTS, temperature=-1)
    with pytest.raises(ValueError, match="n must be"):
        engine.generate(PROMPTS, n=0)


def test_generation_stops_at_every_end_of_turn_token_a_chat_model_names():
    """Qwen2.5-Instruct's generation config lists <|im_end|> and <|endoftext|>; the tokenizer's eos joins them."""
    from types import SimpleNamespace

    from transformers import GenerationConfig

    from curriculum.engines.base import stop_token_ids

    chat = GenerationConfig(eos_token_id=[151645, 151643])
    assert stop_token_ids(chat, SimpleNamespace(eos_token_id=151645)) == [151645, 151643]
    plain = GenerationConfig()
    assert stop_token_ids(plain, SimpleNamespace(eos_token_id=7)) == [7]
    with pytest.raises(ValueError, match="names an end-of-sequence token"):
        stop_token_ids(plain, SimpleNamespace(eos_token_id=None))
