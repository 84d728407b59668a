"""The toy base model: a tiny Qwen2-architecture model with a character tokenizer, trained by SFT
on the easy levels of the world (`model.kind: tiny`), cached by a key of everything that shapes it.

A real model (`model.kind: hf`) is used as it is and never passes through here.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curriculum import environment
from curriculum.config import Config, ConfigError, PretrainConfig
from curriculum.environment import describe, weights_fingerprint
from curriculum.evaluation import EvalResult, evaluate, format_accuracy_table
from curriculum.models import (
    BASE_MODEL_FORMAT,
    MARKER_FILE,
    ModelError,
    build_char_tokenizer,
    build_tiny_model,
    count_parameters,
    is_saved_model,
    save_atomically,
    save_model,
)
from curriculum.records import Problem
from curriculum.training.sft import build_sft_dataset, make_sft_trainer, sft_args
from curriculum.verify import Verifier
from curriculum.worlds import Pretraining, world_for

# The code that builds and evaluates the toy base model: a change to any of it gives a new cache entry
# (the world's own code is in its `pretraining_key`).
BASE_MODEL_CODE = [
    "curriculum.models",
    "curriculum.training.pretrain",
    "curriculum.training.sft",
    "curriculum.engines.base",
    "curriculum.engines.hf",
    "curriculum.evaluation",
    "curriculum.verify.extract",
    "curriculum.verify.worker",
    "curriculum.verify.verifier",
]


@dataclass
class PretrainResult:
    path: Path
    trained: bool  # False when the cached base model was reused
    evaluation: Any  # curriculum.evaluation.EvalResult
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


def world_pretraining(config: Config) -> Pretraining:
    """What the world offers to pretrain the toy model on (its `pretraining` capability)."""
    pretraining = world_for(config).pretraining()
    if pretraining is None:  # the config refuses model.kind=tiny on such a world first
        raise ConfigError(
            f"model.kind=tiny is pretrained on its world's problems; world.name={config.world.name} "
            "has none to pretrain on: use model.kind=hf with model.path"
        )
    return pretraining


def base_model_key(config: Config) -> dict[str, Any]:
    """Everything that determines the pretrained tiny base model: its config, the world's problems, the
    code and library versions that build and evaluate it, the CPU numerics and thread count (they
    change its bits)."""
    import torch

    return {
        "format": BASE_MODEL_FORMAT,
        "tiny": config.model.tiny.model_dump(mode="json"),
        "pretrain": config.pretrain.model_dump(mode="json"),
        "world": world_pretraining(config).pretraining_key(),
        "evaluation": config.evaluation.model_dump(mode="json", include={"max_new_tokens", "batch_size"}),
        "seed": config.experiment.seed,
        "code": environment.source_digest(BASE_MODEL_CODE),
        "libraries": environment.library_versions(),
        "numerics": environment.numerics(),
        "threads": torch.get_num_threads(),
    }


def base_model_dir(config: Config) -> Path:
    """Where the pretrained tiny base model for this config lives (or will live)."""
    payload = json.dumps(base_model_key(config), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]
    return Path(config.model.cache_dir) / f"base-{digest}"


def pretrain(config: Config, progress: bool = True) -> PretrainResult:
    """Build (or reuse) the tiny base model: SFT on the easy levels, then a held-out accuracy table."""
    import torch
    from transformers import set_seed

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
    world = world_for(config)
    heldout = list(world.heldout())
    problems = _training_problems(world_pretraining(config), config, heldout + world.validation())
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

    with tempfile.TemporaryDirectory(prefix="curriculum-fingerprint-") as scratch:
        save_model(model, tokenizer, scratch)
        return weights_fingerprint(scratch)


def evaluate_base(model: Any, tokenizer: Any, heldout: Sequence[Problem], config: Config, progress: bool) -> Any:
    from curriculum.engines.hf import HFEngine

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


def _training_problems(pretraining: Pretraining, config: Config, kept_out: Sequence[Problem]) -> list[Problem]:
    """Training problems on the pretraining levels, none of them a held-out or validation question."""
    rng = random.Random(config.experiment.seed)
    problems = pretraining.training_problems(
        list(config.pretrain.levels), config.pretrain.examples, rng, config.pretrain.level_weights
    )
    kept_out_ids = {p.id for p in kept_out}
    return [p for p in problems if p.id not in kept_out_ids]
