"""The DPO Learner (Socratic-Zero): TRL's DPOTrainer on preference pairs built from the round's
graded attempts (pairs.py), updating the student's LoRA adapter round after round.

Each round gets a fresh `DPOTrainer` over that round's pairs, while the LoRA weights and the
AdamW optimizer live in the Learner and carry over (policy.py). The reference policy of every
round is the base model (the adapter switched off), so the KL anchor of the whole run stays
fixed at the pretrained model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from curriculum.records import PreferencePair
from curriculum.training.adapter import AdapterState, quiet_datasets
from curriculum.training.batch import LearnBatch, LearnOutcome
from curriculum.training.pairs import build_preference_pairs
from curriculum.training.retention import AnchorLoss, anchored

# The per-round metrics TRL's DPOTrainer logs that `update` reports (means over the logged steps).
REWARD_METRICS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")


class DPO:
    """DPO on Socratic-Zero pairs built from the batch (pairs.py)."""

    def __init__(self, state: AdapterState) -> None:
        self.state = state

    def learn(self, batch: LearnBatch) -> LearnOutcome:
        cfg = self.state.learner_cfg
        pairs = [
            pair
            for group in batch.groups
            for pair in build_preference_pairs(
                group.problem,
                group.attempts,
                group.prompt,
                batch.policy_version,
                batch.round,
                cfg.pairing,
                cfg.max_pairs_per_problem,
            )
        ]
        return LearnOutcome(self.update(pairs, batch.round, self.state.anchor_for(batch, cfg.batch_size)), pairs)

    def update(self, pairs: Sequence[PreferencePair], round: int, anchor: AnchorLoss | None = None) -> dict[str, float]:
        """One round of DPO on `pairs` (plus the retention `anchor`'s term in every step); returns the
        round's metrics (`{"steps": 0}` without pairs)."""
        if not pairs:
            self.state.last_log_history = []
            return {"steps": 0}
        start = time.perf_counter()
        dataset = self._dataset(pairs)
        with quiet_datasets(not self.state.progress):
            trainer = self._trainer(dataset, round, anchor)
        setup = time.perf_counter() - start  # the data and the round's trainer, before the first step
        self.state.use_base_as_reference()
        steps = self.state.run_trainer(trainer)
        metrics = _mean_metrics(self.state.last_log_history)
        metrics.update(
            steps=float(steps),
            pairs=float(len(pairs)),
            seconds=time.perf_counter() - start,
            setup_seconds=setup,
            **(anchor.metrics() if anchor else {}),
        )
        return metrics

    def _dataset(self, pairs: Sequence[PreferencePair]) -> Any:
        from datasets import Dataset

        # Completions end in eos as in SFT (`build_sft_dataset`): the model learns to stop after an answer.
        eos = self.state.tokenizer.eos_token
        return Dataset.from_dict(
            {
                "prompt": [p.prompt for p in pairs],
                "chosen": [_with_eos(p.chosen, eos) for p in pairs],
                "rejected": [_with_eos(p.rejected, eos) for p in pairs],
            }
        )

    def _trainer(self, dataset: Any, round: int, anchor: AnchorLoss | None = None) -> Any:
        from transformers import PrinterCallback
        from trl import DPOConfig, DPOTrainer

        cfg = self.state.learner_cfg
        if cfg.rpo_alpha is None:
            losses: dict[str, Any] = dict(loss_type=["sigmoid"])
        else:  # RPO in TRL 1.16: the DPO loss plus rpo_alpha x the NLL of the chosen completion
            losses = dict(loss_type=["sigmoid", "sft"], loss_weights=[1.0, cfg.rpo_alpha])
        args = DPOConfig(
            **self.state.trainer_args("dpo", round),  # logs every step: the round's means cover them all
            beta=cfg.beta,
            per_device_train_batch_size=self.state.per_device(cfg.batch_size, "learner.batch_size"),
            num_train_epochs=cfg.epochs,
            max_steps=cfg.steps_per_round or -1,  # a fixed step count (equal compute) overrides the epochs
            max_length=None,  # never cut a completion silently; the Solver bounds their length
            **losses,
        )
        trainer = anchored(DPOTrainer, anchor)(
            model=self.state.model,
            ref_model=None,
            args=args,
            train_dataset=dataset,
            processing_class=self.state.tokenizer,
            optimizers=self.state.optimizers,
        )
        if not self.state.progress:  # without tqdm, transformers prints every log dict instead
            trainer.remove_callback(PrinterCallback)
        return trainer


def _with_eos(text: str, eos: str) -> str:
    return text if text.endswith(eos) else text + eos


def _mean_metrics(history: Sequence[dict[str, float]]) -> dict[str, float]:
    """Means of the loss and reward metrics over the steps that logged them."""
    metrics: dict[str, float] = {}
    for key in ("loss", *REWARD_METRICS):
        values = [float(entry[key]) for entry in history if key in entry]
        metrics[key] = sum(values) / len(values) if values else math.nan
    return metrics
