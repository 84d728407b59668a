"""Supervised fine-tuning with TRL's SFTTrainer, and pretraining of the toy base model.

The dataset is prompt-completion (prompt = `prompt_for(question)`, completion = the
step-by-step solution + eos), so TRL 1.16 masks the loss on the prompt
(`completion_only_loss` defaults to True for such datasets).
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curriculum.config import Config, PretrainConfig
from curriculum.records import Problem

@dataclass
class PretrainResult:
    path: Path
    trained: bool  # False when the cached base model was reused
    evaluation: Any  # curriculum.evaluation.EvalResult
    seconds: float
    train_loss: float | None = None
    examples: int = 0


# ----------------------------------------------------------------------------- reusable pieces


@dataclass
class PackingCollator:
    """Packs a batch's tokenized examples into rows of about `row_length` tokens.

    Each example keeps its own position ids (restarting at 0) and no attention mask is
    passed, so transformers builds a block-diagonal causal mask from the position ids:
    examples never see each other. Random batches mix short and long problems (keeping
    families mixed in every batch, which learning needs), and packing removes the padding
    that costs about two thirds of the compute of a padded batch.
    """

    pad_token_id: int
    row_length: int = 256

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        order = sorted(range(len(examples)), key=lambda i: -len(examples[i]["input_ids"]))
        capacity = max(self.row_length, len(examples[order[0]]["input_ids"]))
        rows: list[list[int]] = []  # example indices per row, first-fit decreasing
        room: list[int] = []
        for index in order:
            length = len(examples[index]["input_ids"])
            slot = next((r for r, free in enumerate(room) if free >= length), None)
            if slot is None:
                rows.append([index])
                room.append(capacity - length)
            else:
                rows[slot].append(index)
                room[slot] -= length
        width = max(capacity - free for free in room)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        position_ids = torch.arange(width).repeat(len(rows), 1)  # padding: one more segment
        for r, members in enumerate(rows):
            start = 0
            for index in members:
                ids = examples[index]["input_ids"]
                end = start + len(ids)
                input_ids[r, start:end] = torch.tensor(ids)
                labels[r, start:end] = torch.tensor(examples[index].get("labels", ids))
                position_ids[r, start:end] = torch.arange(len(ids))
                start = end
            position_ids[r, start:] = torch.arange(width - start)
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}


def build_sft_dataset(problems: Sequence[Problem], tokenizer: Any, weights: Sequence[float] | None = None) -> Any:
    """A prompt-completion `datasets.Dataset` from problems with solutions (optional per-row weight)."""
    from datasets import Dataset

    from curriculum.models import prompt_for

    missing = [p.id for p in problems if not p.solution]
    if missing:
        raise ValueError(f"{len(missing)} problems have no solution to learn, e.g. {missing[0]}")
    if weights is not None and len(weights) != len(problems):
        raise ValueError(f"got {len(weights)} weights for {len(problems)} problems")
    columns: dict[str, list[Any]] = {
        "prompt": [prompt_for(p.question, tokenizer) for p in problems],
        "completion": [p.solution + tokenizer.eos_token for p in problems],
    }
    if weights is not None:
        columns["weight"] = [float(w) for w in weights]
    return Dataset.from_dict(columns)


def sft_args(output_dir: str | Path, *, learning_rate: float, batch_size: int, epochs: float,
             warmup_ratio: float, seed: int, progress: bool = False, use_cpu: bool = True,
             max_steps: int = -1, logging_steps: int = 50, **overrides: Any) -> Any:
    """An `SFTConfig` for our runs: no checkpoints, no reporting, cosine decay after warmup."""
    from trl import SFTConfig

    settings: dict[str, Any] = dict(
        output_dir=str(output_dir),
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        num_train_epochs=epochs,
        max_steps=max_steps,
        warmup_steps=warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        lr_scheduler_type="cosine",
        weight_decay=0.0,
        seed=seed,
        data_seed=seed,
        use_cpu=use_cpu,
        bf16=False,
        fp16=False,
        report_to="none",
        save_strategy="no",
        logging_steps=logging_steps,
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        gradient_checkpointing=False,  # TRL turns it on by default; it only costs time at toy sizes
        max_length=None,  # traces are short; never cut one silently
    )
    settings.update(overrides)
    return SFTConfig(**settings)


def make_sft_trainer(model: Any, tokenizer: Any, dataset: Any, args: Any, pack: bool = False,
                     trainer_class: Any = None, **kwargs: Any) -> Any:
    """TRL SFTTrainer on a prompt-completion dataset (loss on the completion only).

    `pack=True` packs each batch with `PackingCollator` (needs an attention implementation
    that honours packed position ids, as transformers' sdpa and eager ones do).
    """
    if pack:
        kwargs.setdefault("data_collator", PackingCollator(tokenizer.pad_token_id))
    import datasets
    from transformers import PrinterCallback
    from trl import SFTTrainer

    quiet = args.disable_tqdm
    bars_were_on = datasets.is_progress_bar_enabled()
    if quiet:  # no "Tokenizing train dataset" bars either
        datasets.disable_progress_bars()
    try:
        trainer = (trainer_class or SFTTrainer)(model=model, args=args, train_dataset=dataset,
                                                processing_class=tokenizer, **kwargs)
    finally:
        if quiet and bars_were_on:
            datasets.enable_progress_bars()
    if quiet:  # without tqdm, transformers prints every log dict instead
        trainer.remove_callback(PrinterCallback)
    return trainer


def pretrain_args(output_dir: str | Path, pretrain: PretrainConfig, seed: int, progress: bool) -> Any:
    return sft_args(output_dir, learning_rate=pretrain.learning_rate, batch_size=pretrain.batch_size,
                    epochs=pretrain.epochs, warmup_ratio=pretrain.warmup_ratio, seed=seed, progress=progress)


# ----------------------------------------------------------------------------- the toy base model


def pretrain(config: Config, progress: bool = True) -> PretrainResult:
    """Build (or reuse) the tiny base model: SFT on the easy levels, then a held-out accuracy table."""
    import torch
    from transformers import set_seed

    from curriculum.evaluation import EvalResult, format_accuracy_table
    from curriculum.models import (MARKER_FILE, ModelError, base_model_dir, base_model_key, build_char_tokenizer,
                                   build_tiny_model, count_parameters, is_saved_model, save_atomically)

    if config.model.kind != "tiny":
        raise ModelError("pretrain builds the tiny model (model.kind=tiny); with model.kind=hf the base is model.path")
    folder = base_model_dir(config)
    if is_saved_model(folder):
        print(f"base model cached at {folder}: skipping pretraining")
        marker = json.loads((folder / MARKER_FILE).read_text())
        evaluation = EvalResult.from_dict(marker["evaluation"])
        print(format_accuracy_table(evaluation, title="held-out accuracy of the cached base model"))
        return PretrainResult(path=folder, trained=False, evaluation=evaluation, seconds=0.0)

    start = time.perf_counter()
    seed = config.experiment.seed
    set_seed(seed)
    world = _world(config)
    heldout = list(world.heldout())
    problems = _training_problems(world, config, heldout)
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(config.model.tiny, tokenizer)
    print(f"pretraining a {count_parameters(model) / 1e6:.2f}M-parameter model on {len(problems)} problems "
          f"of levels {list(config.pretrain.levels)} ({torch.get_num_threads()} threads)")
    dataset = build_sft_dataset(problems, tokenizer)
    with tempfile.TemporaryDirectory(prefix="curriculum-sft-") as scratch:
        args = pretrain_args(scratch, config.pretrain, seed, progress)
        trainer = make_sft_trainer(model, tokenizer, dataset, args, pack=True)
        output = trainer.train()
    train_seconds = time.perf_counter() - start
    model = trainer.model.eval()
    model.config.use_cache = True  # the trainer turns the KV cache off; generation wants it back

    evaluation = evaluate_base(model, tokenizer, heldout, config, progress)
    seconds = time.perf_counter() - start
    # The held-out table travels in the marker file, so a cache hit can show it without decoding.
    save_atomically(model, tokenizer, folder, extra={"key": base_model_key(config), "evaluation": evaluation.to_dict()})
    print(f"trained in {train_seconds:.0f} s (loss {output.training_loss:.3f}), total {seconds:.0f} s; saved {folder}")
    print(format_accuracy_table(evaluation, title="held-out accuracy of the base model"))
    return PretrainResult(path=folder, trained=True, evaluation=evaluation, seconds=seconds,
                          train_loss=float(output.training_loss), examples=len(problems))


def evaluate_base(model: Any, tokenizer: Any, heldout: Sequence[Problem], config: Config, progress: bool) -> Any:
    from curriculum.engines.hf import HFEngine
    from curriculum.evaluation import evaluate
    from curriculum.verify import Verifier

    engine = HFEngine(model, tokenizer, batch_size=config.evaluation.batch_size)
    with Verifier(config.verifier.timeout_s) as verifier:
        return evaluate(engine, heldout, verifier, "answer_colon", config.evaluation.max_new_tokens,
                        progress=progress)


def _world(config: Config) -> Any:
    from curriculum.worlds.arithmetic import ArithmeticWorld

    return ArithmeticWorld(config.world, seed=config.experiment.seed)


def _training_problems(world: Any, config: Config, heldout: Sequence[Problem]) -> list[Problem]:
    """Training problems on the pretraining levels, none of them a held-out question."""
    rng = random.Random(config.experiment.seed)
    problems = world.training_problems(list(config.pretrain.levels), config.pretrain.examples, rng,
                                        config.pretrain.level_weights)
    heldout_ids = {p.id for p in heldout}
    return [p for p in problems if p.id not in heldout_ids]
