"""Model and tokenizer factory: the tiny local model, HF folders or hub ids, LoRA.

The tiny model is a Qwen2-architecture causal LM over a character-level tokenizer,
built locally (no download). Its folder carries a marker file so that loading
uses our tokenizer explicitly: `AutoTokenizer` on a folder whose config says
qwen2 swaps in a byte-level tokenizer that drops spaces.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curriculum.config import LoraConfig, TinyModelConfig
from curriculum.errors import CurriculumError
from curriculum.files import replace_dir_atomically

if TYPE_CHECKING:  # heavy imports stay out of CLI start-up
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

PAD_TOKEN = "<pad>"
EOS_TOKEN = "<eos>"
BOS_TOKEN = "<bos>"
UNK_TOKEN = "<unk>"
SPECIAL_TOKENS = [PAD_TOKEN, EOS_TOKEN, BOS_TOKEN, UNK_TOKEN]
# Every printable ASCII character except the vertical whitespace variants, plus newline.
CHARACTERS = [chr(code) for code in range(32, 127)] + ["\n"]

MARKER_FILE = "curriculum_model.json"
CHAR_TOKENIZER = "char"
# Bump when the tokenizer, model construction or pretraining recipe changes in a way
# that makes an old cached base model wrong.
BASE_MODEL_FORMAT = 3

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$|^[A-Za-z0-9][\w.\-]*$")


class ModelError(CurriculumError, ValueError):
    """A model or tokenizer that cannot be loaded; the message is one line meant for the user."""


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No "Loading weights" / "Writing model shards" bars for our small local folders."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


# ----------------------------------------------------------------------------- tokenizer


def build_char_tokenizer() -> PreTrainedTokenizerBase:
    """One token per character of printable ASCII and newline, plus pad/eos/bos/unk."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    # Every single character (newline included) is its own pre-token.
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        bos_token=BOS_TOKEN,
        unk_token=UNK_TOKEN,
        clean_up_tokenization_spaces=False,  # the default would turn "a ." into "a."
        padding_side="left",  # decoder-only generation pads on the left
        model_max_length=1_000_000,
    )
    return tokenizer


def load_char_tokenizer(folder: str | Path) -> PreTrainedTokenizerBase:
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder))
    tokenizer.clean_up_tokenization_spaces = False
    tokenizer.padding_side = "left"
    return tokenizer


def prompt_for(question: str, tokenizer: PreTrainedTokenizerBase, instruction: str = "") -> str:
    """The prompt text for a question; the Solver, evaluation and training all use this.

    `instruction` (the world's answer format, e.g. "put your final answer within \\boxed{}")
    follows the question. A model with a chat template gets both as one user turn; the tiny
    model (no template) gets them followed by a newline.
    """
    text = question + instruction
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": text}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text + "\n"


# ----------------------------------------------------------------------------- models


def build_tiny_model(tiny_cfg: TinyModelConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """A freshly initialised Qwen2ForCausalLM sized by `tiny_cfg` (about 0.8M parameters by default)."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=tiny_cfg.hidden_size,
        num_hidden_layers=tiny_cfg.num_layers,
        num_attention_heads=tiny_cfg.num_heads,
        num_key_value_heads=tiny_cfg.num_kv_heads,
        intermediate_size=tiny_cfg.intermediate_size,
        max_position_embeddings=tiny_cfg.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    model = Qwen2ForCausalLM(model_config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return model


def count_parameters(model: Any, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def save_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    folder: str | Path,
    extra: dict[str, Any] | None = None,
) -> None:
    """Save as an ordinary HF folder; a char tokenizer also gets the marker file."""
    folder = Path(folder)
    with quiet_transformers():
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if _is_char_tokenizer(tokenizer):
        marker = {"tokenizer": CHAR_TOKENIZER, "format": BASE_MODEL_FORMAT, **(extra or {})}
        (folder / MARKER_FILE).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")


def _is_char_tokenizer(tokenizer: Any) -> bool:
    vocab = tokenizer.get_vocab()
    return len(vocab) == len(SPECIAL_TOKENS) + len(CHARACTERS) and all(c in vocab for c in CHARACTERS)


def resolve_dtype(dtype: str, device: str | None) -> str:
    """`model.dtype` for a model on `device`: auto is bfloat16 on a GPU that supports it, else float32."""
    if dtype != "auto":
        return dtype
    if device is not None and device.startswith("cuda"):
        import torch

        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bfloat16"
    return "float32"


def _torch_dtype(dtype: str, device: str | None = None) -> Any:
    import torch

    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
            resolve_dtype(dtype, device)
        ]
    except KeyError:
        raise ModelError(f"unknown dtype '{dtype}' (use auto, float32, bfloat16 or float16)") from None


def load_tokenizer(path_or_id: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer of a model folder or hub id, our char tokenizer loaded explicitly."""
    folder = Path(path_or_id)
    if (folder / MARKER_FILE).is_file():
        return load_char_tokenizer(folder)
    check_model_exists(str(path_or_id))
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path_or_id))
    except (OSError, ValueError) as exc:  # not a model folder, or a hub id that cannot be reached
        raise ModelError(f"cannot load the tokenizer of '{path_or_id}': {_first_line(exc)}") from None
    if tokenizer.pad_token is None:  # batched generation and training need one
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def context_length(path_or_id: str | Path) -> int | None:
    """The most tokens (prompt + generated) the model at `path_or_id` takes, from its config; None if unsaid."""
    check_model_exists(str(path_or_id))
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(path_or_id))
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot read the config of model '{path_or_id}': {str(exc).strip().splitlines()[0]}"
        ) from None
    return model_context(config)


def model_context(config: Any) -> int | None:
    """The context length a transformers model config gives (`max_position_embeddings`), or None."""
    value = getattr(config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def load_model_and_tokenizer(
    path_or_id: str | Path, dtype: str = "auto", device: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from an HF folder (e.g. the tiny base model) or a hub id."""
    check_model_exists(str(path_or_id))
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(path_or_id)
    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(str(path_or_id), dtype=_torch_dtype(dtype, device))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model '{path_or_id}': {_first_line(exc)}") from None
    if device is not None:
        model = model.to(device)
    model.eval()
    return model, tokenizer


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_model_exists(path_or_id: str) -> None:
    """A missing local path that cannot be a hub id is a user error, not a download attempt."""
    if Path(path_or_id).exists():
        return
    if path_or_id.startswith((".", "/", "~")) or not _HUB_ID.match(path_or_id):
        raise ModelError(f"model path '{path_or_id}' does not exist and is not a hub id like 'org/name'")


def check_model_path(path_or_id: str | Path) -> None:
    """Raise ModelError (one line) for a model that cannot be loaded: a missing local path, a folder
    without a tokenizer, or a hub id that cannot be reached. Loads only the tokenizer (small)."""
    check_model_exists(str(path_or_id))
    load_tokenizer(path_or_id)


# ----------------------------------------------------------------------------- LoRA


def attach_lora(model: PreTrainedModel, lora_cfg: LoraConfig) -> Any:
    """Wrap `model` in a PEFT LoRA model: only the adapter weights are trainable."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in lora_cfg.target_modules if m not in present]
    if missing:
        raise ModelError(f"model.lora.target_modules {missing} are not modules of this model")
    peft_config = PeftLoraConfig(
        r=lora_cfg.r,
        lora_alpha=lora_cfg.alpha,
        lora_dropout=lora_cfg.dropout,
        target_modules=list(lora_cfg.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, peft_config)


def write_identity_adapter(model_path: str | Path, lora_cfg: LoraConfig, folder: str | Path) -> Path:
    """Save a LoRA adapter of shape `lora_cfg` whose A and B are zero: the base model as an adapter.

    vLLM serves the base policy this way (policy v0), never as "no LoRA": a request without LoRA
    batched with LoRA requests gets the last slot's adapter (vLLM PRs #49656, #48421). The model
    is built on the meta device, so no weights are loaded; PEFT names the tensors and the config.
    """
    import torch
    from accelerate import init_empty_weights
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM

    check_model_exists(str(model_path))
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(model_path)))
    peft_model = attach_lora(model, lora_cfg)
    zeros = {
        name: torch.zeros(tensor.shape, dtype=torch.float32)
        for name, tensor in get_peft_model_state_dict(peft_model).items()
    }

    def write(tmp: Path) -> None:
        peft_model.peft_config["default"].save_pretrained(str(tmp))
        save_file(zeros, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})

    return replace_dir_atomically(folder, write)


def load_adapter(model: PreTrainedModel, path: str | Path, trainable: bool = False) -> Any:
    """Wrap `model` with the LoRA adapter saved at `path`."""
    from peft import PeftModel

    if not (Path(path) / "adapter_config.json").is_file():
        raise ModelError(f"no LoRA adapter at '{path}' (adapter_config.json missing)")
    return PeftModel.from_pretrained(model, str(path), is_trainable=trainable)


# ----------------------------------------------------------------------------- base model cache


def is_saved_model(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / "config.json").is_file() and (folder / MARKER_FILE).is_file()


def save_atomically(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    folder: str | Path,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save into a temporary sibling folder, then rename it into place (no half-written model)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        save_model(model, tokenizer, tmp, extra=extra)
        if folder.exists():  # another process finished first: keep its copy
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
