from pathlib import Path

import pytest
import torch

from curriculum.config import Config, LoraConfig, TinyModelConfig
from curriculum.models import (
    CHARACTERS,
    MARKER_FILE,
    ModelError,
    attach_lora,
    build_char_tokenizer,
    build_tiny_model,
    count_parameters,
    load_adapter,
    load_model_and_tokenizer,
    load_tokenizer,
    prompt_for,
    save_atomically,
    save_model,
)
from curriculum.training.pretrain import base_model_dir

SMALL = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64)
ALL_PRINTABLE = "".join(chr(c) for c in range(32, 127))


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer()


def test_char_tokenizer_round_trip_keeps_every_character(tokenizer):
    text = ALL_PRINTABLE + "\n  two  spaces\n\nblank line above, trailing space \n 12 + 34 = ?\n"
    ids = tokenizer(text)["input_ids"]
    assert len(ids) == len(text)  # one token per character, nothing added
    assert tokenizer.decode(ids) == text
    assert tokenizer.unk_token_id not in ids


def test_char_tokenizer_eos_is_one_special_token(tokenizer):
    ids = tokenizer("1+1=\n" + tokenizer.eos_token)["input_ids"]
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "1+1=\n"
    assert len({tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id}) == 3


def test_saved_char_tokenizer_loads_explicitly_and_keeps_spaces(tokenizer, tmp_path):
    model = build_tiny_model(SMALL, tokenizer)
    save_model(model, tokenizer, tmp_path)
    assert (tmp_path / MARKER_FILE).is_file()
    loaded = load_tokenizer(tmp_path)
    text = "a b  c\n" + ALL_PRINTABLE
    assert loaded.decode(loaded(text)["input_ids"]) == text
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert loaded.padding_side == "left"


def test_default_tiny_model_is_about_a_million_parameters(tokenizer):
    model = build_tiny_model(TinyModelConfig(), tokenizer)
    assert 0.5e6 < count_parameters(model) < 1.5e6
    assert model.config.vocab_size == len(tokenizer) == len(CHARACTERS) + 4


def test_model_saves_and_loads_as_hf_folder(tokenizer, tmp_path):
    torch.manual_seed(0)
    model = build_tiny_model(SMALL, tokenizer).eval()
    save_model(model, tokenizer, tmp_path)
    assert (tmp_path / "config.json").is_file()
    loaded, loaded_tokenizer = load_model_and_tokenizer(tmp_path)
    ids = torch.tensor([tokenizer("12+34=?\n")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, loaded(ids).logits)
    assert loaded.config.model_type == "qwen2"
    assert loaded_tokenizer.decode(loaded_tokenizer("x y\n")["input_ids"]) == "x y\n"


def test_missing_model_path_is_one_clear_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_model_and_tokenizer(tmp_path / "no_such_model")
    with pytest.raises(ModelError, match="does not exist"):
        load_model_and_tokenizer("./runs/nothing/here")


def test_lora_leaves_only_adapter_weights_trainable(tokenizer):
    model = build_tiny_model(SMALL, tokenizer)
    total = count_parameters(model)
    peft_model = attach_lora(model, LoraConfig(r=4, alpha=8))
    trainable = [name for name, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert 0 < count_parameters(peft_model, trainable_only=True) < total
    assert not any(p.requires_grad for name, p in peft_model.named_parameters() if "lora_" not in name)


def test_lora_with_unknown_target_module_is_rejected(tokenizer):
    model = build_tiny_model(SMALL, tokenizer)
    with pytest.raises(ModelError, match="no_such_proj"):
        attach_lora(model, LoraConfig(target_modules=["q_proj", "no_such_proj"]))


def test_saved_adapter_loads_back_with_the_same_outputs(tokenizer, tmp_path):
    torch.manual_seed(0)
    base = build_tiny_model(SMALL, tokenizer).eval()
    save_model(base, tokenizer, tmp_path / "base")
    peft_model = attach_lora(base, LoraConfig(r=4, alpha=8))
    with torch.no_grad():  # LoRA B starts at zero: give the adapter an effect
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    peft_model.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([tokenizer("7*8=?\n")["input_ids"]])
    with torch.no_grad():
        expected = peft_model(ids).logits
    fresh, _ = load_model_and_tokenizer(tmp_path / "base")
    with torch.no_grad():
        assert not torch.allclose(fresh(ids).logits, expected)
        assert torch.allclose(load_adapter(fresh, tmp_path / "adapter")(ids).logits, expected, atol=1e-5)
    with pytest.raises(ModelError, match="no LoRA adapter"):
        load_adapter(fresh, tmp_path / "base")


def test_base_model_dir_depends_on_what_shapes_the_model(tmp_path):
    config = Config.model_validate({"model": {"cache_dir": str(tmp_path)}})
    same = Config.model_validate({"model": {"cache_dir": str(tmp_path)}, "solver": {"attempts": 4}})
    other_lr = Config.model_validate({"model": {"cache_dir": str(tmp_path)}, "pretrain": {"learning_rate": 1e-4}})
    other_seed = Config.model_validate({"model": {"cache_dir": str(tmp_path)}, "experiment": {"seed": 5}})
    other_size = Config.model_validate({"model": {"cache_dir": str(tmp_path), "tiny": {"num_layers": 2}}})
    folder = base_model_dir(config)
    assert folder.parent == Path(tmp_path)
    assert base_model_dir(same) == folder
    assert len({folder, base_model_dir(other_lr), base_model_dir(other_seed), base_model_dir(other_size)}) == 4


def test_save_atomically_leaves_only_the_final_folder(tokenizer, tmp_path):
    model = build_tiny_model(SMALL, tokenizer)
    target = tmp_path / "cache" / "base-x"
    save_atomically(model, tokenizer, target, extra={"note": "test"})
    assert [p.name for p in target.parent.iterdir()] == ["base-x"]
    assert '"note": "test"' in (target / MARKER_FILE).read_text()
    load_model_and_tokenizer(target)


def test_prompt_for_uses_the_chat_template_when_there_is_one(tokenizer):
    assert prompt_for("What is 2+2?", tokenizer) == "What is 2+2?\n"
    chat = build_char_tokenizer()
    chat.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    assert prompt_for("What is 2+2?", chat) == "<user>What is 2+2?\n<assistant>"
    # the world's answer instruction follows the question inside the user turn
    assert prompt_for("What is 2+2?", chat, " Box it.") == "<user>What is 2+2? Box it.\n<assistant>"
