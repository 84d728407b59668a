"""The TRL arguments every trainer of ours takes, written once: DPO, GRPO and SFT rounds, the toy
base model's pretraining and the Generator's weighted SFT add only their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curriculum.errors import CurriculumError

CPU = {"use_cpu": True, "bf16": False, "fp16": False}


def trl_args(
    output_dir: str | Path,
    *,
    seed: int,
    progress: bool,
    precision: dict[str, Any] | None = None,
    logging_steps: int = 1,
) -> dict[str, Any]:
    """No checkpoints, reports or worker processes; the seed of the data order; bars only with
    `progress`; `precision` (default: CPU float32) from `AdapterState.trainer_precision`."""
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
        "gradient_checkpointing": False,  # TRL turns it on by default; it only costs time at these sizes
    }


def per_device_batch_size(step_size: int, world_size: int, key: str) -> int:
    """Examples each of `world_size` data-parallel workers takes per optimizer step, so that a step
    covers `step_size` examples in all whatever the worker count (`key`: the setting of the step
    size, named when it does not split evenly)."""
    if step_size % world_size:
        raise CurriculumError(
            f"{key}={step_size} does not split evenly over ray.learner.count={world_size} data-parallel "
            "workers; make it a multiple of the worker count"
        )
    return step_size // world_size
