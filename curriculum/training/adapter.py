"""The student's trainable adapter, shared by every learner: a LoRA adapter on a frozen base model,
the optimizer that carries over from round to round, and atomic publish/restore.

A learner (`learner.algorithm`, roles/learner.py) is an algorithm object (training/dpo.py, grpo.py,
sft.py) that builds its training data from the round's graded attempts and runs one TRL trainer on
this state; nothing is shared by subclassing. What the state holds:

- the base model (on the device the Learner's actor was given) with a fresh LoRA adapter;
- one AdamW optimizer that carries over from round to round (each round's TRL trainer is handed
  it), so DPO or GRPO on a few hundred examples per round is one long optimisation in chunks;
- the TRL arguments every round's trainer shares (`trainer_args`);
- atomic publish/restore of the adapter together with the optimizer state.

A published version is a folder with the adapter (PEFT `save_pretrained`) and `optimizer.pt`,
written to a temporary sibling and renamed into place; `publish` answers with its `PolicyRef`,
which carries the folder's files to the driver (the run directory's checkpoint) and the adapter's
to Solvers that cannot read this folder (another node).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from curriculum.config import LearnerConfig, LoraConfig
from curriculum.errors import CurriculumError
from curriculum.files import replace_dir_atomically
from curriculum.models import attach_lora, load_model_and_tokenizer, resolve_dtype
from curriculum.training.batch import LearnBatch, PolicyRef
from curriculum.training.retention import AnchorLoss, anchor_examples
from curriculum.training.trl_args import batch_args, trl_args

OPTIMIZER_FILE = "optimizer.pt"
# The adapter name TRL gives its frozen copy of a PeftModel's adapter (see `_use_base_as_reference`).
TRL_REFERENCE_ADAPTER = "ref"


class LearnerStateError(CurriculumError, ValueError):
    """A published Learner folder that cannot be restored into this Learner."""


class AdapterState:
    """The student's LoRA adapter, its optimizer (and run-long schedule), and what every learner's
    trainer is given of them."""

    def __init__(
        self,
        base_model_path: str | Path,
        lora_cfg: LoraConfig,
        learner_cfg: LearnerConfig,
        work_dir: str | Path,
        seed: int,
        dtype: str = "float32",
        device: str = "cpu",
        progress: bool = False,
        rounds: int = 1,
        world_size: int = 1,
    ) -> None:
        import torch
        from transformers import set_seed

        self.learner_cfg = learner_cfg
        self.work_dir = Path(work_dir)
        self.seed = seed
        self.progress = progress
        self.world_size = world_size  # data-parallel workers training this adapter together (distributed.py)
        self.use_cpu = device == "cpu"
        self.dtype = resolve_dtype(dtype, device)
        set_seed(seed)  # the LoRA A matrices are drawn at random
        base, self.tokenizer = load_model_and_tokenizer(base_model_path, dtype=self.dtype, device=device)
        self.model = attach_lora(base, lora_cfg)
        # The optimizer belongs to the Learner, not to a round's trainer: DPO on a few pairs per
        # round is one long optimisation split into chunks, and Adam's moment estimates (and its
        # bias-correction step count) are what keep the step size sane at the start of each
        # chunk. A fresh AdamW every round would restart with bias-corrected first steps of
        # full size `lr` in a direction estimated from a single batch.
        self.optimizer = torch.optim.AdamW(self._trainable_parameters(), lr=learner_cfg.learning_rate, weight_decay=0.0)
        # lr_schedule=cosine_run: one schedule over the run's `rounds`, carried over like the optimizer.
        self.scheduler = None
        if learner_cfg.lr_schedule == "cosine_run":
            from transformers import get_cosine_schedule_with_warmup

            total = rounds * (learner_cfg.steps_per_round or 1)
            self.scheduler = get_cosine_schedule_with_warmup(
                self.optimizer, round(learner_cfg.warmup_ratio * total), total
            )
        self.last_log_history: list[dict[str, float]] = []  # TRL's per-step logs of the last update
        self.last_step_seconds = 0.0  # of the last update: its training time over its optimizer steps

    # ------------------------------------------------------------------------- for the algorithms

    @property
    def trainer_precision(self) -> dict[str, Any]:
        """TRL/transformers precision arguments: bf16 autocast for a bf16 model on a GPU."""
        return {
            "use_cpu": self.use_cpu,
            "bf16": self.dtype == "bfloat16" and not self.use_cpu,
            "fp16": self.dtype == "float16" and not self.use_cpu,
        }

    @property
    def trainer_schedule(self) -> dict[str, Any]:
        """The round's learning-rate schedule arguments (a run-long schedule is handed over instead)."""
        if self.scheduler is not None:
            return {"lr_scheduler_type": "constant", "warmup_steps": 0}
        return {"lr_scheduler_type": self.learner_cfg.lr_schedule, "warmup_steps": self.learner_cfg.warmup_ratio}

    @property
    def optimizers(self) -> tuple[Any, Any]:
        """What each round's trainer is handed: the run's optimizer and its schedule (None: the round's own)."""
        return self.optimizer, self.scheduler

    def anchor_for(self, batch: LearnBatch, batch_size: int) -> Any:
        """The round's retention anchor (training/retention.py), or None. Its term joins every
        forward pass: with gradient accumulation each micro-batch takes its share of the step's
        anchors (`retention.anchor_batch_size`, default `batch_size`, the step's examples)."""

        cfg = self.learner_cfg.retention
        passes = max(1, batch_size // (self.learner_cfg.micro_batch_size or batch_size))
        per_step = cfg.anchor_batch_size or batch_size
        return AnchorLoss.build(
            anchor_examples(batch.groups + batch.replay, cfg.anchor_min_solve_rate),
            self.tokenizer,
            cfg,
            max(1, -(-per_step // passes)),
            self.seed + batch.round,
        )

    def trainer_args(
        self,
        name: str,
        round: int,
        batch_size: int,
        step_key: str = "learner.batch_size",
        micro_batch_size: int | None = None,
    ) -> dict[str, Any]:
        """The TRL arguments of a round's trainer that every algorithm shares: its scratch folder
        `work_dir/<name>-trainer`, the learning rate and its schedule, a seed per round (a different
        but reproducible shuffle each round), precision, no checkpoints, reports or bars, and the
        memory settings: optimizer steps of `batch_size` examples (`step_key` names it) in
        micro-batches of `micro_batch_size` (default: `learner.micro_batch_size`) on each of
        `world_size` workers, and `learner.gradient_checkpointing`."""
        cfg = self.learner_cfg
        return {
            **trl_args(
                self.work_dir / f"{name}-trainer",
                seed=self.seed + round,
                progress=self.progress,
                precision=self.trainer_precision,
                gradient_checkpointing=cfg.gradient_checkpointing,
            ),
            **batch_args(batch_size, micro_batch_size or cfg.micro_batch_size, self.world_size, step_key=step_key),
            "learning_rate": self.learner_cfg.learning_rate,
            # Data-parallel workers (distributed.py): every LoRA weight takes part in each forward,
            # so DDP need not search the graph for unused ones (transformers turns that on for PEFT).
            **({"ddp_find_unused_parameters": False} if self.world_size > 1 else {}),
            **self.trainer_schedule,  # the optimizer (and a run-long schedule) carry on across rounds
        }

    def run_trainer(self, trainer: Any) -> int:
        """Run one round's TRL trainer on the adapter; keep its per-step logs and its seconds per
        optimizer step; return its steps."""
        try:
            start = time.perf_counter()
            trainer.train()
            steps = trainer.state.global_step
            self.last_step_seconds = (time.perf_counter() - start) / steps if steps else 0.0
            self.last_log_history = [entry for entry in trainer.state.log_history if "loss" in entry]
            return steps
        finally:
            # TRL's trainers replace the base model's `forward` by a wrapper (their fused LM
            # head) on every construction; drop it so the wrappers do not pile up round after round.
            vars(self.model.get_base_model()).pop("forward", None)
            self.model.eval()

    def use_base_as_reference(self) -> None:
        """Make the base model (adapter off) the reference policy of this round's trainer.

        Handed a PeftModel and no ref_model, TRL 1.16's DPOTrainer (and GRPOTrainer with beta > 0) adds a
        frozen copy of the current adapter named "ref" and uses it as the reference: from round 2 on that would
        anchor each round to the previous policy instead of the base. Without that copy TRL
        computes the reference with the adapter disabled, i.e. the base model.
        """
        if TRL_REFERENCE_ADAPTER in self.model.peft_config:
            self.model.delete_adapter(TRL_REFERENCE_ADAPTER)
        self.model.set_adapter("default")

    @property
    def optimizer_steps(self) -> int:
        """AdamW steps taken over the whole run (continues across rounds and restores)."""
        states = [self.optimizer.state[p] for group in self.optimizer.param_groups for p in group["params"]]
        return max((int(state["step"]) for state in states if "step" in state), default=0)

    def _trainable_parameters(self) -> list[Any]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def _trainable_shapes(self) -> list[list[Any]]:
        """Name and shape of every trainable parameter, in the optimizer's order."""
        return [[name, list(p.shape)] for name, p in self.model.named_parameters() if p.requires_grad]

    # ------------------------------------------------------------------------- publish / restore

    def publish(self, version: int, directory: str | Path) -> PolicyRef:
        """Save the adapter and optimizer state to `directory` atomically; returns its reference with
        every file (the checkpoint the driver keeps). The folder is complete or absent, never
        half-written; an existing one is replaced (a resumed run publishing the same version again)."""
        import torch

        def write(tmp: Path) -> None:
            self.model.save_pretrained(str(tmp))
            torch.save(
                {
                    "version": version,
                    "parameters": self._trainable_shapes(),
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                },
                tmp / OPTIMIZER_FILE,
            )

        return PolicyRef.read(version, replace_dir_atomically(directory, write), names=None)

    def restore(self, directory: str | Path) -> int:
        """Load adapter weights and optimizer state published by `publish`; returns the version."""
        import torch
        from peft import set_peft_model_state_dict
        from peft.utils import load_peft_weights

        directory = Path(directory)
        optimizer_file = directory / OPTIMIZER_FILE
        if not (directory / "adapter_config.json").is_file() or not optimizer_file.is_file():
            raise LearnerStateError(
                f"'{directory}' is not a published Learner folder (needs adapter_config.json and {OPTIMIZER_FILE})"
            )
        state = torch.load(optimizer_file, map_location="cpu", weights_only=True)
        if state["parameters"] != self._trainable_shapes():
            raise LearnerStateError(
                f"'{directory}' holds an adapter of another shape (model.lora differs from the run that published it)"
            )
        # Copy into the existing parameters so the optimizer keeps pointing at them.
        weights = load_peft_weights(str(directory), device=str(self.model.device))
        result = set_peft_model_state_dict(self.model, weights)
        if result.unexpected_keys:
            raise LearnerStateError(f"'{directory}': unexpected adapter weights {result.unexpected_keys[:3]}")
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # the learning rate comes from the config, not the file
            group["lr"] = group["initial_lr"] = self.learner_cfg.learning_rate
        if self.scheduler is not None:
            if state.get("scheduler") is None:
                raise LearnerStateError(
                    f"'{directory}' holds no learning-rate schedule (learner.lr_schedule "
                    f"differs from the run that published it)"
                )
            self.scheduler.load_state_dict(state["scheduler"])
            for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_last_lr()):
                group["lr"] = lr  # where the run's schedule stood, not its start
        self.model.eval()
        return int(state["version"])


@contextmanager
def quiet_datasets(quiet: bool) -> Iterator[None]:
    """No "Tokenizing train dataset" bars when the run is quiet."""
    import datasets

    was_on = datasets.is_progress_bar_enabled()
    if quiet and was_on:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if quiet and was_on:
            datasets.enable_progress_bars()
