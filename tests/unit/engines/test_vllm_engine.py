"""The vLLM engine against the HF engine on the same models: tokens, log-probs, stop tokens,
determinism across batch compositions, and a LoRA per policy version.

One engine per model for the whole module (vLLM takes seconds to start); `make test-vllm` runs these.
"""

from __future__ import annotations

import pytest
import torch

from curriculum.config import LoraConfig, TinyModelConfig, VLLMConfig
from curriculum.engines.hf import HFEngine
from curriculum.models import attach_lora, build_char_tokenizer, build_tiny_model, prompt_for, save_model

pytestmark = pytest.mark.vllm

# vLLM's CPU attention needs head_dim >= 32.
CHAR_MODEL = TinyModelConfig(hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=128)
LORA = LoraConfig(r=8, alpha=16)
SETTINGS = VLLMConfig(enforce_eager=True)
PROMPTS = ["1+1=?\n", "12+345=?\n", "7\n", "Ana has 3 pens.\n"]


@pytest.fixture(scope="module")
def char_model(tmp_path_factory):
    torch.manual_seed(0)
    tokenizer = build_char_tokenizer()
    folder = tmp_path_factory.mktemp("char") / "model"
    save_model(build_tiny_model(CHAR_MODEL, tokenizer), tokenizer, folder)
    return folder


def random_adapter(model_path, folder, seed: int, r: int = LORA.r):
    """A LoRA adapter with random B on the model at `model_path` (what a trained policy looks like)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    peft_model = attach_lora(AutoModelForCausalLM.from_pretrained(model_path), LoraConfig(r=r, alpha=2 * r))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    peft_model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def engine(char_model, tmp_path_factory):
    from curriculum.engines.vllm import VLLMEngine

    engine = VLLMEngine(char_model, LORA, SETTINGS, tmp_path_factory.mktemp("vllm"))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def hf(char_model):
    return HFEngine.from_pretrained(char_model)


def teacher_forced(engine: HFEngine, prompt: str, token_ids, temperature: float) -> list[float]:
    """Per-token log-probs of `token_ids` after `prompt` from one forward pass of the HF model."""
    prompt_ids = engine.tokenizer(prompt)["input_ids"]
    with torch.no_grad():
        logits = engine.model(torch.tensor([prompt_ids + list(token_ids)])).logits[0].float()
    logprobs = torch.log_softmax(logits / temperature, dim=-1)
    return [float(logprobs[len(prompt_ids) + i - 1, t]) for i, t in enumerate(token_ids)]


def test_samples_carry_tokens_and_the_logprobs_they_were_drawn_with(engine, hf):
    out = engine.generate(PROMPTS, n=3, temperature=0.7, max_new_tokens=12, seed=1)
    assert [len(samples) for samples in out] == [3] * len(PROMPTS)
    eos = engine.tokenizer.eos_token_id
    for prompt, samples in zip(PROMPTS, out):
        for sample in samples:
            assert sample.num_tokens == len(sample.token_ids) == len(sample.token_logprobs)
            assert 1 <= sample.num_tokens <= 12
            assert sample.finished == (sample.token_ids[-1] == eos)  # the stop token is kept
            assert sample.finished or sample.num_tokens == 12
            assert sample.text == hf.tokenizer.decode(sample.token_ids, skip_special_tokens=True)
            assert sample.logprob == pytest.approx(sum(sample.token_logprobs))
            assert sample.token_logprobs == pytest.approx(teacher_forced(hf, prompt, sample.token_ids, 0.7), abs=1e-4)
    assert len({s.token_ids for samples in out for s in samples}) > len(PROMPTS)  # n samples, not n copies


def test_greedy_matches_the_hf_engine_on_the_base_policy(engine, hf):
    """Policy v0 is served as a zero adapter: it is the base model."""
    assert engine.adapter_path is None and engine.lora_request.lora_name == "policy-v0"
    ours = engine.generate(PROMPTS, n=2, temperature=0, max_new_tokens=10)
    theirs = hf.generate(PROMPTS, n=2, temperature=0, max_new_tokens=10)
    for a, b in zip(ours, theirs):
        assert a[0] == a[1]
        assert (a[0].text, a[0].token_ids, a[0].finished) == (b[0].text, b[0].token_ids, b[0].finished)
        assert a[0].token_logprobs == pytest.approx(b[0].token_logprobs, abs=1e-4)


def test_a_prompts_samples_depend_on_the_seed_not_on_the_rest_of_the_call(engine):
    """What resume relies on: each request is seeded from the call's seed and its prompt."""
    everything = engine.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=10, seed=5)
    assert engine.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=10, seed=5) == everything
    reordered = engine.generate([PROMPTS[3], PROMPTS[1]], n=2, temperature=1.0, max_new_tokens=10, seed=5)
    for got, want in zip(reordered, [everything[3], everything[1]]):
        assert [s.token_ids for s in got] == [s.token_ids for s in want]
        for a, b in zip(got, want):
            assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-6)
    other_seed = engine.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=10, seed=6)
    assert [s.token_ids for p in other_seed for s in p] != [s.token_ids for p in everything for s in p]
    repeated = engine.generate([PROMPTS[0], PROMPTS[0]], n=1, temperature=1.0, max_new_tokens=10, seed=5)
    assert repeated[0][0].token_ids == everything[0][0].token_ids and repeated[1] != repeated[0]


def test_a_call_larger_than_a_scheduler_step_samples_as_its_parts(engine):
    """40 prompts x 2 samples x ~150 tokens outgrow one scheduler step (4096 tokens): with chunked
    prefill vLLM 0.32 split a prompt over two steps and crashed rewinding its seeded CPU generator.
    Scheduled whole, the requests sample what they sample in small calls."""
    prompts = [f"{i}: " + "12+345=? " * 16 + "\n" for i in range(40)]
    assert sum(len(engine.tokenizer(p)["input_ids"]) for p in prompts) * 2 > 4096
    everything = engine.generate(prompts, n=2, temperature=1.0, max_new_tokens=3, seed=2)
    parts = engine.generate(prompts[:3], n=2, temperature=1.0, max_new_tokens=3, seed=2) + engine.generate(
        prompts[-3:], n=2, temperature=1.0, max_new_tokens=3, seed=2
    )
    assert [[s.token_ids for s in p] for p in parts] == [
        [s.token_ids for s in p] for p in everything[:3] + everything[-3:]
    ]


def test_one_lora_per_version_old_ones_removed(engine, char_model, tmp_path):
    base = engine.generate(PROMPTS, n=1, temperature=0, max_new_tokens=10)
    for version in (1, 2, 3):
        adapter = random_adapter(char_model, tmp_path / f"policy_v{version}", seed=version)
        engine.load_adapter(adapter, version)
        merged = HFEngine.from_pretrained(char_model, adapter=adapter)
        ours = engine.generate(PROMPTS, n=1, temperature=0, max_new_tokens=10)
        theirs = merged.generate(PROMPTS, n=1, temperature=0, max_new_tokens=10)
        assert [s[0].token_ids for s in ours] == [s[0].token_ids for s in theirs]
        for a, b in zip(ours, theirs):
            assert a[0].token_logprobs == pytest.approx(b[0].token_logprobs, abs=1e-4)
        request = engine.lora_request
        assert (request.lora_name, request.lora_path) == (f"policy-v{version}", str(adapter))
        assert set(engine.llm.llm_engine.list_loras()) == {request.lora_int_id}  # the previous version is gone
    assert ours != base  # the adapters change the policy
    engine.load_adapter(None, 0)
    assert engine.generate(PROMPTS, n=1, temperature=0, max_new_tokens=10) == base


def test_on_cpu_sleep_mode_is_not_asked_for_and_a_sleep_keeps_the_engine_sampling(char_model, tmp_path):
    """vLLM's sleep mode is CUDA-only (the GPU path is unverified until run on a GPU): on CPU an engine
    built for a Solver that sleeps while learning starts without it, and sleep/wake_up do nothing."""
    from curriculum.engines.vllm import VLLMEngine

    engine = VLLMEngine(char_model, LORA, SETTINGS, tmp_path / "vllm", sleep_mode=True)
    try:
        assert engine.sleep_mode is False
        before = engine.generate(PROMPTS, n=1, temperature=0, max_new_tokens=10)
        engine.sleep()
        assert not engine.asleep
        engine.wake_up()
        adapter = random_adapter(char_model, tmp_path / "policy_v1", seed=1)
        engine.load_adapter(adapter, 1)
        assert engine.generate(PROMPTS, n=1, temperature=0, max_new_tokens=10) != before
    finally:
        engine.close()


def test_an_adapter_above_the_engines_rank_is_refused_in_one_line(engine, char_model, tmp_path):
    from curriculum.engines.vllm import VLLMEngineError

    too_big = random_adapter(char_model, tmp_path / "big", seed=0, r=16)
    with pytest.raises(VLLMEngineError, match=r"rank 16, above this engine's max_lora_rank 8"):
        engine.load_adapter(too_big, 9)
    assert engine.lora_request.lora_name == "policy-v0"  # still serving what it served


def test_chat_model_stops_at_its_end_of_turn_tokens(random_qwen, tmp_path):
    """The random Qwen2 with a BPE tokenizer, ChatML and two end tokens (<|im_end|>, <|endoftext|>)."""
    from curriculum.engines.vllm import VLLMEngine

    hf = HFEngine.from_pretrained(random_qwen)
    prompts = [prompt_for(q, hf.tokenizer) for q in ("What is 2+2?", "Janet has 3 ducks. How many legs?")]
    engine = VLLMEngine(random_qwen, LORA, SETTINGS, tmp_path / "vllm")
    try:
        assert engine.stop_token_ids == hf.eos_token_ids and len(engine.stop_token_ids) == 2
        sampled = engine.generate(prompts, n=8, temperature=1.0, max_new_tokens=24, seed=0)
        greedy = engine.generate(prompts, n=1, temperature=0, max_new_tokens=24)
    finally:
        engine.close()
    for prompt, samples in zip(prompts, sampled):
        for sample in samples:
            assert sample.finished == (sample.token_ids[-1] in hf.eos_token_ids)
            assert sample.token_logprobs == pytest.approx(teacher_forced(hf, prompt, sample.token_ids, 1.0), abs=1e-4)
    theirs = hf.generate(prompts, n=1, temperature=0, max_new_tokens=24)
    assert [(g[0].text, g[0].token_ids) for g in greedy] == [(g[0].text, g[0].token_ids) for g in theirs]
