"""A small random-weight Qwen2 model with a real byte-level BPE tokenizer and a ChatML template,
saved as an ordinary Hugging Face folder: the real-model path (`model.kind: hf`, vLLM, an LLM
Teacher) exercised without a download.

The tokenizer is trained with `tokenizers` on local text (GSM8K train questions and answers by
default); the weights are random, so the model writes nonsense. Tests built on it assert that
the machinery is right and that nonsense is rejected with reasons, never that it learns.
head_dim is 32 (vLLM's CPU attention refuses 16).

    python -m curriculum.testing.random_qwen OUT_DIR [--text FILE.jsonl]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

from curriculum.files import replace_dir_atomically
from curriculum.models import quiet_transformers

IM_START, IM_END, END_OF_TEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
DEFAULT_TEXT = Path(__file__).resolve().parents[2].parent / "shared/data/benchmarks/gsm8k/train.jsonl"


def _texts(path: Path, fields: tuple[str, ...] = ("question", "answer")) -> Iterator[str]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            for field in fields:
                if isinstance(record.get(field), str):
                    yield record[field]


def build_tokenizer(text_file: Path, vocab_size: int = 2048):
    """A byte-level BPE tokenizer trained on `text_file` (JSON Lines), with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_texts(text_file), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=IM_END,
        pad_token=END_OF_TEXT,
        clean_up_tokenization_spaces=False,
        padding_side="left",
        model_max_length=4096,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build(
    out: str | Path,
    text_file: str | Path = DEFAULT_TEXT,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    vocab_size: int = 2048,
    max_position_embeddings: int = 4096,
    seed: int = 0,
    *,
    num_kv_heads: int | None = None,
    intermediate_size: int | None = None,
    model_vocab_size: int | None = None,
    dtype: str = "float32",
    **shape: object,
) -> Path:
    """Write the model folder to `out` (replaced atomically) and return it.

    `vocab_size` is the trained BPE's; `model_vocab_size` (a real model's, e.g. Qwen2.5's 151,936)
    adds tokens `<|x0|>`, `<|x1|>`, ... up to it, so that every id the model can sample
    decodes to text that encodes back to it, as with a real tokenizer of that size. `shape`: more
    `Qwen2Config` fields (rope_theta, ...); `dtype`: what the weights are saved in.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer(Path(text_file), vocab_size)
    if model_vocab_size is not None and model_vocab_size > len(tokenizer):
        tokenizer.add_tokens([f"<|x{i}|>" for i in range(model_vocab_size - len(tokenizer))])
    eos_ids = [tokenizer.convert_tokens_to_ids(IM_END), tokenizer.convert_tokens_to_ids(END_OF_TEXT)]
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads or num_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        eos_token_id=eos_ids[0],
        pad_token_id=eos_ids[1],
        bos_token_id=None,
        **shape,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config).to(getattr(torch, dtype))
    # As a real chat model: generation ends at the end of the turn or the end of text.
    model.generation_config = GenerationConfig(eos_token_id=eos_ids, pad_token_id=eos_ids[1])

    def write(tmp: Path) -> None:
        with quiet_transformers():
            model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return replace_dir_atomically(out, write)


def with_short_replies(model: str | Path, out: str | Path, every: int = 10) -> Path:
    """A copy of the model folder whose generation config also ends a reply at one in `every` of the
    vocabulary's printable tokens (every `every`-th id), as it ends one at its end-of-turn token.

    The random model samples near-uniformly, so its end-of-turn token comes about once in 2,000
    tokens and its samples run to max_new_tokens: a Generator on it never finishes a draft and nothing
    reaches its labeller. Engines stop at the model's end tokens (engines/base.py `stop_token_ids`),
    so on this copy drafts of ~`every` tokens finish, and the path after them is what a test sees."""
    import shutil

    from transformers import GenerationConfig, PreTrainedTokenizerFast

    model, out = Path(model), Path(out)

    def write(tmp: Path) -> None:
        shutil.copytree(model, tmp, dirs_exist_ok=True)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(tmp)
        special = set(tokenizer.all_special_ids)
        ends = [
            i
            for i in range(0, len(tokenizer), every)
            if i not in special and (text := tokenizer.decode([i])).strip() and text.isprintable()
        ]
        config = GenerationConfig.from_pretrained(tmp)
        config.eos_token_id = [*config.eos_token_id, *ends]
        config.save_pretrained(tmp)

    return replace_dir_atomically(out, write)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the model folder to write")
    parser.add_argument(
        "--text", default=str(DEFAULT_TEXT), help="JSON Lines with question/answer fields to train the tokenizer on"
    )
    args = parser.parse_args()
    print(build(args.out, args.text))


if __name__ == "__main__":
    main()
