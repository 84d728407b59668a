"""A Solver sharing a GPU with the Learner sleeps while it trains: the HF engine's weights leave the
device, and on waking the engine samples with the NEW policy it is given (vLLM once woke with stale
weights in TRL, #5312). On CPU "off the device" is what the engine records; the vLLM engine's sleep
mode is CUDA-only and never asked for on CPU."""

import pytest
import torch

from curriculum.config import Config, LoraConfig, TinyModelConfig, VLLMConfig
from curriculum.engines.base import EngineAsleep
from curriculum.engines.hf import HFEngine
from curriculum.engines.vllm import llm_arguments
from curriculum.models import attach_lora, build_char_tokenizer, build_tiny_model

SMALL = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64)
PROMPTS = ["1+1=?\n", "12+345=?\n"]


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer()


@pytest.fixture(scope="module")
def policies(tokenizer, tmp_path_factory):
    """The base model's weights and two adapters on it (random B: each a different policy)."""
    torch.manual_seed(0)
    base = build_tiny_model(SMALL, tokenizer).state_dict()
    folder = tmp_path_factory.mktemp("policies")
    for version in (1, 2):
        peft_model = attach_lora(build_tiny_model(SMALL, tokenizer), LoraConfig(r=4, alpha=8))
        peft_model.base_model.model.load_state_dict(base, strict=False)
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 1.0)
        peft_model.save_pretrained(folder / f"v{version}")
    return base, folder


def engine_on(tokenizer, base, adapter=None):
    model = build_tiny_model(SMALL, tokenizer)
    model.load_state_dict(base)
    engine = HFEngine(model, tokenizer)
    if adapter is not None:
        engine.load_adapter(adapter)
    return engine


def logprobs(engine):
    return [g.token_logprobs for per in engine.generate(PROMPTS, n=2, max_new_tokens=8, seed=3) for g in per]


def test_hf_engine_sleeps_off_the_device_and_wakes_with_the_new_policy(tokenizer, policies):
    base, folder = policies
    engine = engine_on(tokenizer, base, folder / "v1")
    old = logprobs(engine)
    engine.sleep()
    assert engine.asleep and engine._awake_device == torch.device("cpu")  # where it goes back to
    assert engine._base_state is not None and all(v.device.type == "cpu" for v in engine._base_state.values())
    with pytest.raises(EngineAsleep, match="wake_up first"):
        engine.generate(PROMPTS)
    engine.sleep()  # asleep already: nothing to do
    engine.wake_up()
    engine.load_adapter(folder / "v2", 2)
    assert not engine.asleep
    new = logprobs(engine)
    assert new == logprobs(engine_on(tokenizer, base, folder / "v2"))  # exactly the new policy's
    assert new != old


def test_vllm_asks_for_sleep_mode_only_on_a_gpu(tmp_path):
    model = tmp_path / "model"  # a hub id: never read on a GPU
    on_gpu = llm_arguments("some/model", VLLMConfig(), "bfloat16", "cuda", 0, 8, sleep_mode=True)
    assert on_gpu["enable_sleep_mode"] is True
    assert "enable_sleep_mode" not in llm_arguments("some/model", VLLMConfig(), "bfloat16", "cuda", 0, 8)
    settings = VLLMConfig(max_model_len=64)  # on CPU it reads no context length from the model
    assert "enable_sleep_mode" not in llm_arguments(str(model), settings, "float32", "cpu", 0, 8, sleep_mode=True)


@pytest.mark.parametrize(
    ("solver_gpus", "learner_gpus", "in_process", "setting", "sleeps"),
    [
        (0.0, 0.0, False, "auto", False),  # the CPU recipe
        (0.5, 0.5, False, "auto", True),  # fractions of a GPU: Ray packs them onto one
        (1.0, 1.0, False, "auto", False),  # a GPU each
        (0.5, 1.0, False, "auto", False),
        (1.0, 1.0, True, "auto", True),  # one process: one device
        (1.0, 1.0, False, True, True),
        (0.5, 0.5, False, False, False),
    ],
)
def test_solvers_sleep_while_learning_when_they_share_the_learners_gpu(
    solver_gpus, learner_gpus, in_process, setting, sleeps
):
    config = Config.model_validate(
        {
            "solver": {"sleep_while_learning": setting},
            "ray": {
                "in_process": in_process,
                "solver": {"num_gpus": solver_gpus},
                "learner": {"num_gpus": learner_gpus},
            },
        }
    )
    assert config.solvers_sleep_while_learning is sleeps
