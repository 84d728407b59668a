"""The DPO Learner: one LoRA adapter on a frozen base, updated round after round with TRL's DPOTrainer.

Each round gets a fresh `DPOTrainer` over that round's pairs, while the LoRA weights and
the AdamW optimizer live in the Learner and carry over from round to round. The
reference policy of every round is the base model (the adapter switched off), so the
KL anchor of the whole run stays fixed at the pretrained model.

A published version is a folder with the adapter (PEFT `save_pretrained`) and
`optimizer.pt`, written to a temporary sibling and renamed into place.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from curriculum.config import LearnerConfig, LoraConfig
from curriculum.errors import CurriculumError
from curriculum.records import PreferencePair

OPTIMIZER_FILE = "optimizer.pt"
# The per-round metrics TRL's DPOTrainer logs that `update` reports (means over the logged steps).
REWARD_METRICS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")
# The adapter name TRL gives its frozen copy of a PeftModel's adapter (see `_use_base_as_reference`).
TRL_REFERENCE_ADAPTER = "ref"


class LearnerStateError(CurriculumError, ValueError):
    """A published Learner folder that cannot be restored into this Learner."""


class DPOLearner:
    """Holds the student's LoRA adapter and optimizer; `update` runs one round of DPO on it."""

    def __init__(self, base_model_path: str | Path, lora_cfg: LoraConfig, learner_cfg: LearnerConfig,
                 work_dir: str | Path, seed: int, dtype: str = "float32", progress: bool = False) -> None:
        import torch
        from transformers import set_seed

        from curriculum.models import attach_lora, load_model_and_tokenizer

        self.learner_cfg = learner_cfg
        self.work_dir = Path(work_dir)
        self.seed = seed
        self.progress = progress
        self.use_cpu = not torch.cuda.is_available()
        set_seed(seed)  # the LoRA A matrices are drawn at random
        base, self.tokenizer = load_model_and_tokenizer(base_model_path, dtype=dtype,
                                                        device=None if self.use_cpu else "cuda")
        self.model = attach_lora(base, lora_cfg)
        # The optimizer belongs to the Learner, not to a round's trainer: DPO on a few pairs per
        # round is one long optimisation split into chunks, and Adam's moment estimates (and its
        # bias-correction step count) are what keep the step size sane at the start of each
        # chunk. A fresh AdamW every round would restart with bias-corrected first steps of
        # full size `lr` in a direction estimated from a single batch.
        self.optimizer = torch.optim.AdamW(self._trainable_parameters(), lr=learner_cfg.learning_rate,
                                           weight_decay=0.0)
        self.last_log_history: list[dict[str, float]] = []  # TRL's per-step logs of the last update

    # ------------------------------------------------------------------------- training

    def update(self, pairs: Sequence[PreferencePair], round: int) -> dict[str, float]:
        """One round of DPO on `pairs`; returns the round's metrics (`{"steps": 0}` without pairs)."""
        if not pairs:
            self.last_log_history = []
            return {"steps": 0}
        start = time.perf_counter()
        dataset = self._dataset(pairs)
        with _quiet_datasets(not self.progress):
            trainer = self._trainer(dataset, round)
        self._use_base_as_reference()
        steps = self._run_trainer(trainer)
        metrics = _mean_metrics(self.last_log_history)
        metrics.update(steps=float(steps), pairs=float(len(pairs)), seconds=time.perf_counter() - start)
        return metrics

    def _run_trainer(self, trainer: Any) -> int:
        """Run one round's TRL trainer on the adapter; keep its per-step logs; return its steps."""
        try:
            trainer.train()
            self.last_log_history = [entry for entry in trainer.state.log_history if "loss" in entry]
            return trainer.state.global_step
        finally:
            self._undo_trainer_patches()
            self.model.eval()

    @property
    def optimizer_steps(self) -> int:
        """AdamW steps taken over the whole run (continues across rounds and restores)."""
        states = [self.optimizer.state[p] for group in self.optimizer.param_groups for p in group["params"]]
        return max((int(state["step"]) for state in states if "step" in state), default=0)

    def _dataset(self, pairs: Sequence[PreferencePair]) -> Any:
        from datasets import Dataset

        # Completions end in eos as in SFT (`build_sft_dataset`): the model learns to stop after an answer.
        eos = self.tokenizer.eos_token
        return Dataset.from_dict({
            "prompt": [p.prompt for p in pairs],
            "chosen": [_with_eos(p.chosen, eos) for p in pairs],
            "rejected": [_with_eos(p.rejected, eos) for p in pairs],
        })

    def _trainer(self, dataset: Any, round: int) -> Any:
        from transformers import PrinterCallback
        from trl import DPOConfig, DPOTrainer

        cfg = self.learner_cfg
        if cfg.rpo_alpha is None:
            losses: dict[str, Any] = dict(loss_type=["sigmoid"])
        else:  # RPO in TRL 1.16: the DPO loss plus rpo_alpha x the NLL of the chosen completion
            losses = dict(loss_type=["sigmoid", "sft"], loss_weights=[1.0, cfg.rpo_alpha])
        args = DPOConfig(
            output_dir=str(self.work_dir / "dpo-trainer"),
            beta=cfg.beta,
            learning_rate=cfg.learning_rate,
            per_device_train_batch_size=cfg.batch_size,
            num_train_epochs=cfg.epochs,
            max_steps=cfg.steps_per_round or -1,  # a fixed step count (equal compute) overrides the epochs
            lr_scheduler_type=cfg.lr_schedule,  # restarts each round; the optimizer carries on
            warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the round's steps
            weight_decay=0.0,
            seed=self.seed + round,  # a different but reproducible shuffle each round
            data_seed=self.seed + round,
            use_cpu=self.use_cpu,
            bf16=False,
            fp16=False,
            report_to="none",
            save_strategy="no",
            logging_steps=1,  # every step is logged, so the round's means cover every step
            disable_tqdm=not self.progress,
            dataloader_num_workers=0,
            gradient_checkpointing=False,  # TRL turns it on by default; it only costs time at these sizes
            max_length=None,  # never cut a completion silently; the Solver bounds their length
            **losses,
        )
        trainer = DPOTrainer(model=self.model, ref_model=None, args=args, train_dataset=dataset,
                             processing_class=self.tokenizer, optimizers=(self.optimizer, None))
        if not self.progress:  # without tqdm, transformers prints every log dict instead
            trainer.remove_callback(PrinterCallback)
        return trainer

    def _use_base_as_reference(self) -> None:
        """Make the base model (adapter off) the DPO reference of this round.

        Handed a PeftModel and no ref_model, TRL 1.16's DPOTrainer adds a frozen copy of the
        current adapter named "ref" and uses it as the reference: from round 2 on that would
        anchor each round to the previous policy instead of the base. Without that copy TRL
        computes the reference with the adapter disabled, i.e. the base model.
        """
        if TRL_REFERENCE_ADAPTER in self.model.peft_config:
            self.model.delete_adapter(TRL_REFERENCE_ADAPTER)
        self.model.set_adapter("default")

    def _undo_trainer_patches(self) -> None:
        # DPOTrainer replaces the base model's `forward` by a wrapper (its fused LM head) on
        # every construction; drop it so the wrappers do not pile up round after round.
        vars(self.model.get_base_model()).pop("forward", None)

    def _trainable_parameters(self) -> list[Any]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def _trainable_shapes(self) -> list[list[Any]]:
        """Name and shape of every trainable parameter, in the optimizer's order."""
        return [[name, list(p.shape)] for name, p in self.model.named_parameters() if p.requires_grad]

    # ------------------------------------------------------------------------- publish / restore

    def publish(self, version: int, directory: str | Path) -> str:
        """Save the adapter and optimizer state to `directory` atomically; returns its path.

        The folder is complete or absent, never half-written; an existing one is replaced.
        """
        import torch

        from curriculum.rundir import replace_dir_atomically

        def write(tmp: Path) -> None:
            self.model.save_pretrained(str(tmp))
            torch.save({"version": version, "parameters": self._trainable_shapes(),
                        "optimizer": self.optimizer.state_dict()}, tmp / OPTIMIZER_FILE)

        # An existing folder (a resumed run publishing the same version again) is replaced.
        return str(replace_dir_atomically(directory, write))

    def restore(self, directory: str | Path) -> int:
        """Load adapter weights and optimizer state published by `publish`; returns the version."""
        import torch
        from peft import set_peft_model_state_dict
        from peft.utils import load_peft_weights

        directory = Path(directory)
        optimizer_file = directory / OPTIMIZER_FILE
        if not (directory / "adapter_config.json").is_file() or not optimizer_file.is_file():
            raise LearnerStateError(f"'{directory}' is not a published Learner folder "
                                    f"(needs adapter_config.json and {OPTIMIZER_FILE})")
        state = torch.load(optimizer_file, map_location="cpu", weights_only=True)
        if state["parameters"] != self._trainable_shapes():
            raise LearnerStateError(f"'{directory}' holds an adapter of another shape "
                                    f"(model.lora differs from the run that published it)")
        # Copy into the existing parameters so the optimizer keeps pointing at them.
        weights = load_peft_weights(str(directory), device=str(self.model.device))
        result = set_peft_model_state_dict(self.model, weights)
        if result.unexpected_keys:
            raise LearnerStateError(f"'{directory}': unexpected adapter weights {result.unexpected_keys[:3]}")
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # the learning rate comes from the config, not the file
            group["lr"] = group["initial_lr"] = self.learner_cfg.learning_rate
        self.model.eval()
        return int(state["version"])


def _with_eos(text: str, eos: str) -> str:
    return text if text.endswith(eos) else text + eos


def _mean_metrics(history: Sequence[dict[str, float]]) -> dict[str, float]:
    """Means of the loss and reward metrics over the steps that logged them."""
    metrics: dict[str, float] = {}
    for key in ("loss", *REWARD_METRICS):
        values = [float(entry[key]) for entry in history if key in entry]
        metrics[key] = sum(values) / len(values) if values else math.nan
    return metrics


@contextmanager
def _quiet_datasets(quiet: bool) -> Iterator[None]:
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
