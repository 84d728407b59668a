"""Supervised fine-tuning with TRL's SFTTrainer: the pieces the toy pretraining (pretrain.py),
the Generator (weighted_sft.py) and the SFT Learner (below) share.

Datasets are prompt-completion (prompt = `prompt_for(question)`, completion = the
step-by-step solution + eos), so TRL 1.16 masks the loss on the prompt
(`completion_only_loss` defaults to True for such datasets).

The SFT Learner (`learner.algorithm: sft`, rejection-sampling fine-tuning) imitates each
group's distinct correct attempts, or the reference solution when every attempt failed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curriculum.models import prompt_for
from curriculum.records import Problem
from curriculum.training.adapter import AdapterState, quiet_datasets
from curriculum.training.batch import Group, LearnBatch, LearnOutcome
from curriculum.training.retention import anchored
from curriculum.training.trl_args import trl_args

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


def sft_args(
    output_dir: str | Path,
    *,
    learning_rate: float,
    batch_size: int,
    epochs: float,
    warmup_ratio: float,
    seed: int,
    progress: bool = False,
    precision: dict[str, Any] | None = None,
    logging_steps: int = 50,
    max_steps: int = -1,
) -> Any:
    """An `SFTConfig` for pretraining and the Generator: cosine decay after warmup (`trl_args` for the rest)."""
    from trl import SFTConfig

    return SFTConfig(
        **trl_args(output_dir, seed=seed, progress=progress, precision=precision, logging_steps=logging_steps),
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        num_train_epochs=epochs,
        max_steps=max_steps,  # -1: `epochs` passes
        warmup_steps=warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        lr_scheduler_type="cosine",
        max_length=None,  # traces are short; never cut one silently
    )


def make_sft_trainer(
    model: Any, tokenizer: Any, dataset: Any, args: Any, pack: bool = False, trainer_class: Any = None, **kwargs: Any
) -> Any:
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
        trainer = (trainer_class or SFTTrainer)(
            model=model, args=args, train_dataset=dataset, processing_class=tokenizer, **kwargs
        )
    finally:
        if quiet and bars_were_on:
            datasets.enable_progress_bars()
    if quiet:  # without tqdm, transformers prints every log dict instead
        trainer.remove_callback(PrinterCallback)
    return trainer


# ----------------------------------------------------------------------------- the SFT Learner


def sft_examples(group: Group) -> tuple[list[str], bool]:
    """Completions to imitate for one group: its distinct correct attempts, or the reference
    solution when every attempt failed (as Socratic-Zero's DPO winner). Second value: from the reference."""
    ordered = sorted(group.attempts, key=lambda a: a.sample_index)
    correct = list(dict.fromkeys(a.completion for a in ordered if a.correct))
    if correct:
        return correct, False
    if group.attempts and group.problem.solution:
        return [group.problem.solution], True
    return [], False


class SFT:
    """Rejection-sampling fine-tuning: SFT of the adapter on the round's correct attempts."""

    def __init__(self, state: AdapterState) -> None:
        self.state = state

    def learn(self, batch: LearnBatch) -> LearnOutcome:
        prompts: list[str] = []
        completions: list[str] = []
        from_reference = 0
        for group in batch.groups:
            texts, is_reference = sft_examples(group)
            prompts += [group.prompt] * len(texts)
            completions += texts
            from_reference += len(texts) if is_reference else 0
        anchor = self.state.anchor_for(batch, self.state.learner_cfg.batch_size)
        metrics = self.update_examples(prompts, completions, batch.round, anchor)
        metrics["examples_from_reference"] = float(from_reference)
        return LearnOutcome(metrics)

    def update_examples(
        self, prompts: Sequence[str], completions: Sequence[str], round: int, anchor: Any = None
    ) -> dict[str, float]:
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        if not prompts:
            self.state.last_log_history = []
            return {"steps": 0.0, "examples": 0.0}
        start = time.perf_counter()
        cfg = self.state.learner_cfg
        eos = self.state.tokenizer.eos_token
        dataset = Dataset.from_dict(
            {"prompt": list(prompts), "completion": [c if c.endswith(eos) else c + eos for c in completions]}
        )
        args = SFTConfig(
            **self.state.trainer_args("sft", round),
            per_device_train_batch_size=self.state.per_device(cfg.batch_size, "learner.batch_size"),
            num_train_epochs=cfg.epochs,
            max_steps=cfg.steps_per_round or -1,  # a fixed step count (equal compute) overrides the epochs
            max_length=None,  # never cut a completion silently; the Solver bounds their length
        )
        with quiet_datasets(not self.state.progress):
            trainer = make_sft_trainer(
                self.state.model,
                self.state.tokenizer,
                dataset,
                args,
                optimizers=self.state.optimizers,
                trainer_class=anchored(SFTTrainer, anchor),
            )
        setup = time.perf_counter() - start  # the data and the round's trainer, before the first step
        steps = self.state.run_trainer(trainer)
        losses = [float(e["loss"]) for e in self.state.last_log_history]
        return {
            "loss": sum(losses) / len(losses) if losses else float("nan"),
            "steps": float(steps),
            "examples": float(len(prompts)),
            "seconds": time.perf_counter() - start,
            "setup_seconds": setup,
            **(anchor.metrics() if anchor else {}),
        }
