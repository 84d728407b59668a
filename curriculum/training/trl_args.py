"""The TRL arguments every trainer of ours takes, written once: DPO, GRPO and SFT rounds, the toy
base model's pretraining and the Generator's weighted SFT add only their own.

The batch arithmetic lives here too (`batch_args`): an optimizer step of `batch_size` examples is
split over `world_size` data-parallel workers and, on each, into micro-batches of
`micro_batch_size` whose gradients accumulate, so the step's size (and its update) does not depend
on how much of it fits in memory at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curriculum.errors import CurriculumError

CPU = {"use_cpu": True, "bf16": False, "fp16": False}


class BatchSplitError(CurriculumError, ValueError):
    """An optimizer step that cannot be split evenly into micro-batches and workers."""


def batch_args(
    batch_size: int,
    micro_batch_size: int | None = None,
    world_size: int = 1,
    key: str = "learner.micro_batch_size",
    step_key: str = "learner.batch_size",
) -> dict[str, int]:
    """`per_device_train_batch_size` and `gradient_accumulation_steps` for steps of `batch_size`
    examples in all: `micro_batch_size` per forward pass (None, or at least the worker's share:
    the share in one pass) on each of `world_size` workers. `key` and `step_key` name the settings in the one-line
    error when the step does not split evenly."""
    if batch_size < 1 or world_size < 1 or (micro_batch_size is not None and micro_batch_size < 1):
        raise BatchSplitError(
            f"{step_key}={batch_size}, {key}={micro_batch_size} and {world_size} worker(s) must be >= 1"
        )
    step = f"a step of {batch_size} examples ({step_key})"
    if batch_size % world_size:
        raise BatchSplitError(f"{step} does not split over ray.learner.count={world_size} data-parallel workers")
    share = batch_size // world_size  # each worker's examples per step
    micro = min(micro_batch_size or share, share)  # a micro-batch at least the share: the share in one pass
    if share % micro:
        raise BatchSplitError(
            f"{key}={micro} does not divide {step} over {world_size} worker(s), {share} each; pick a divisor of {share}"
        )
    return {"per_device_train_batch_size": micro, "gradient_accumulation_steps": batch_size // (micro * world_size)}


def trl_args(
    output_dir: str | Path,
    *,
    seed: int,
    progress: bool,
    precision: dict[str, Any] | None = None,
    logging_steps: int = 1,
    gradient_checkpointing: bool = False,
) -> dict[str, Any]:
    """No checkpoints, reports or worker processes; the seed of the data order; bars only with
    `progress`; `precision` (default: CPU float32) from `AdapterState.trainer_precision`;
    `gradient_checkpointing` recomputes activations in the backward pass (less memory, ~1/3 more
    compute; TRL turns it on by default, which at toy sizes only costs time)."""
    return {
        "output_dir": str(output_dir),
        "weight_decay": 0.0,
        "seed": seed,
        "data_seed": seed,
        **(precision if precision is not None else CPU),
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": logging_steps,
        "disable_tqdm": not progress,
        "dataloader_num_workers": 0,
        "gradient_checkpointing": gradient_checkpointing,
    }
