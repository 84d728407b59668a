"""The toy base model: a tiny Qwen2-architecture model with a character tokenizer, trained by SFT
on the easy levels of the world (`model.kind: tiny`), cached by a key of everything that shapes it.

A real model (`model.kind: hf`) is used as it is and never passes through here.
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
from curriculum.training.sft import build_sft_dataset, make_sft_trainer, sft_args


@dataclass
class PretrainResult:
    path: Path
    trained: bool  # False when the cached base model was reused
    evaluation: Any  # curriculum.report.evaluation.EvalResult
    seconds: float
    fingerprint: str  # hash of the weights (environment.weights_fingerprint)
    train_loss: float | None = None
    examples: int = 0


def pretrain_args(output_dir: str | Path, pretrain: PretrainConfig, seed: int, progress: bool) -> Any:
    return sft_args(
        output_dir,
        learning_rate=pretrain.learning_rate,
        batch_size=pretrain.batch_size,
        epochs=pretrain.epochs,
        warmup_ratio=pretrain.warmup_ratio,
        seed=seed,
        progress=progress,
    )


# ----------------------------------------------------------------------------- the toy base model


def pretrain(config: Config, progress: bool = True) -> PretrainResult:
    """Build (or reuse) the tiny base model: SFT on the easy levels, then a held-out accuracy table."""
    import torch
    from transformers import set_seed

    from curriculum.environment import describe
    from curriculum.models import (
        MARKER_FILE,
        ModelError,
        base_model_dir,
        base_model_key,
        build_char_tokenizer,
        build_tiny_model,
        count_parameters,
        is_saved_model,
        save_atomically,
    )
    from curriculum.report.evaluation import EvalResult, format_accuracy_table

    if config.model.kind != "tiny":
        raise ModelError("pretrain builds the tiny model (model.kind=tiny); with model.kind=hf the base is model.path")
    folder = base_model_dir(config)
    if is_saved_model(folder):
        print(f"base model cached at {folder}: skipping pretraining")
        marker = json.loads((folder / MARKER_FILE).read_text())
        evaluation = EvalResult.from_dict(marker["evaluation"])
        print(format_accuracy_table(evaluation, title="held-out accuracy of the cached base model"))
        print(f"base model fingerprint {marker['fingerprint']}")
        return PretrainResult(
            path=folder, trained=False, evaluation=evaluation, seconds=0.0, fingerprint=marker["fingerprint"]
        )

    start = time.perf_counter()
    seed = config.experiment.seed
    set_seed(seed)
    world = _world(config)
    heldout = list(world.heldout())
    problems = _training_problems(world, config, heldout)
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(config.model.tiny, tokenizer)
    print(
        f"pretraining a {count_parameters(model) / 1e6:.2f}M-parameter model on {len(problems)} problems "
        f"of levels {list(config.pretrain.levels)} ({torch.get_num_threads()} threads)"
    )
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
    # The held-out table and the weights' fingerprint travel in the marker file, so a cache hit can
    # show them without decoding or hashing.
    fingerprint = fingerprint_of(model, tokenizer)
    save_atomically(
        model,
        tokenizer,
        folder,
        extra={
            "key": base_model_key(config),
            "evaluation": evaluation.to_dict(),
            "fingerprint": fingerprint,
            "environment": describe(),
            "train_seconds": round(train_seconds, 1),
            "seconds": round(seconds, 1),
        },
    )
    print(f"trained in {train_seconds:.0f} s (loss {output.training_loss:.3f}), total {seconds:.0f} s; saved {folder}")
    print(format_accuracy_table(evaluation, title="held-out accuracy of the base model"))
    print(f"base model fingerprint {fingerprint}")
    return PretrainResult(
        path=folder,
        trained=True,
        evaluation=evaluation,
        seconds=seconds,
        fingerprint=fingerprint,
        train_loss=float(output.training_loss),
        examples=len(problems),
    )


def fingerprint_of(model: Any, tokenizer: Any) -> str:
    """The weights' fingerprint as they will be saved (environment.weights_fingerprint)."""
    from curriculum.environment import weights_fingerprint
    from curriculum.models import save_model

    with tempfile.TemporaryDirectory(prefix="curriculum-fingerprint-") as scratch:
        save_model(model, tokenizer, scratch)
        return weights_fingerprint(scratch)


def evaluate_base(model: Any, tokenizer: Any, heldout: Sequence[Problem], config: Config, progress: bool) -> Any:
    from curriculum.engines.hf import HFEngine
    from curriculum.report.evaluation import evaluate
    from curriculum.verify import Verifier

    engine = HFEngine(model, tokenizer, batch_size=config.evaluation.batch_size)
    with Verifier(config.verifier.timeout_s) as verifier:
        return evaluate(
            engine,
            heldout,
            verifier,
            config.world.answer_extraction,
            config.evaluation.max_new_tokens,
            progress=progress,
            instruction=config.world.answer_instruction,
        )


def _world(config: Config) -> Any:
    from curriculum.worlds import make_world

    return make_world(config)


def _training_problems(world: Any, config: Config, heldout: Sequence[Problem]) -> list[Problem]:
    """Training problems on the pretraining levels, none of them a held-out question."""
    rng = random.Random(config.experiment.seed)
    problems = world.training_problems(
        list(config.pretrain.levels), config.pretrain.examples, rng, config.pretrain.level_weights
    )
    heldout_ids = {p.id for p in heldout}
    return [p for p in problems if p.id not in heldout_ids]
