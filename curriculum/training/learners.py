"""The Learner interface: what the loop hands a Learner each round, and the factory that picks
the algorithm from `learner.algorithm` (dpo | grpo | sft).

The loop never branches on the algorithm. Each round it hands the Learner a `LearnBatch` (the
round's problems, each with its prompt and its k graded attempts) and gets a `LearnOutcome`
(metrics, plus the records the store keeps: DPO's preference pairs). Each algorithm builds its
own training data from the batch: DPO pairs (pairs.py), GRPO groups with the difficulty filter
(grpo.py), or SFT examples (below).

`DPOLearner` (dpo.py) owns what every algorithm shares: the LoRA adapter on a frozen base, the
AdamW optimizer that carries over from round to round, and atomic publish/restore. The GRPO
and SFT learners reuse that by subclassing it and bring their own round of training.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from curriculum.config import Config
from curriculum.records import Attempt, PreferencePair, Problem
from curriculum.training.dpo import DPOLearner, _quiet_datasets
from curriculum.training.pairs import build_preference_pairs


@dataclass(frozen=True)
class Group:
    """One problem of the round with its prompt and its graded attempts (a GRPO group)."""

    problem: Problem
    prompt: str
    attempts: tuple[Attempt, ...]

    @property
    def solve_rate(self) -> float:
        return sum(a.correct for a in self.attempts) / len(self.attempts) if self.attempts else 0.0


@dataclass(frozen=True)
class LearnBatch:
    """What a round gives the Learner: groups in the order the curriculum selected them."""

    round: int
    policy_version: int  # the version that sampled the attempts
    groups: tuple[Group, ...]


@dataclass
class LearnOutcome:
    metrics: dict[str, float]
    pairs: list[PreferencePair] = field(default_factory=list)  # records the store keeps (DPO only)


class Learner(Protocol):
    def learn(self, batch: LearnBatch) -> LearnOutcome: ...

    def publish(self, version: int, directory: str | Path) -> str: ...

    def restore(self, directory: str | Path) -> int: ...


# ----------------------------------------------------------------------------- DPO


class PairwiseDPOLearner(DPOLearner):
    """DPO on Socratic-Zero pairs built from the batch (pairs.py)."""

    def learn(self, batch: LearnBatch) -> LearnOutcome:
        cfg = self.learner_cfg
        pairs = [pair for group in batch.groups for pair in build_preference_pairs(
            group.problem, group.attempts, group.prompt, batch.policy_version, batch.round,
            cfg.pairing, cfg.max_pairs_per_problem)]
        return LearnOutcome(self.update(pairs, batch.round), pairs)


# ----------------------------------------------------------------------------- SFT


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


class SFTLearner(DPOLearner):
    """Rejection-sampling fine-tuning: SFT of the adapter on the round's correct attempts."""

    def learn(self, batch: LearnBatch) -> LearnOutcome:
        prompts: list[str] = []
        completions: list[str] = []
        from_reference = 0
        for group in batch.groups:
            texts, is_reference = sft_examples(group)
            prompts += [group.prompt] * len(texts)
            completions += texts
            from_reference += len(texts) if is_reference else 0
        metrics = self.update_examples(prompts, completions, batch.round)
        metrics["examples_from_reference"] = float(from_reference)
        return LearnOutcome(metrics)

    def update_examples(self, prompts: Sequence[str], completions: Sequence[str], round: int) -> dict[str, float]:
        from datasets import Dataset

        from curriculum.training.sft import make_sft_trainer, sft_args

        if not prompts:
            self.last_log_history = []
            return {"steps": 0.0, "examples": 0.0}
        start = time.perf_counter()
        cfg = self.learner_cfg
        eos = self.tokenizer.eos_token
        dataset = Dataset.from_dict({"prompt": list(prompts),
                                     "completion": [c if c.endswith(eos) else c + eos for c in completions]})
        args = sft_args(self.work_dir / "sft-trainer", learning_rate=cfg.learning_rate, batch_size=cfg.batch_size,
                        epochs=cfg.epochs, warmup_ratio=cfg.warmup_ratio, seed=self.seed + round,
                        progress=self.progress, use_cpu=self.use_cpu, max_steps=cfg.steps_per_round or -1,
                        logging_steps=1, lr_scheduler_type=cfg.lr_schedule)  # restarts each round, as DPO
        with _quiet_datasets(not self.progress):
            trainer = make_sft_trainer(self.model, self.tokenizer, dataset, args, optimizers=(self.optimizer, None))
        steps = self._run_trainer(trainer)
        losses = [float(e["loss"]) for e in self.last_log_history]
        return {"loss": sum(losses) / len(losses) if losses else float("nan"), "steps": float(steps),
                "examples": float(len(prompts)), "seconds": time.perf_counter() - start}


# ----------------------------------------------------------------------------- factory


def make_learner(config: Config, base_model_path: str | Path, work_dir: str | Path, progress: bool = False) -> Any:
    """The Learner of `learner.algorithm`, holding a fresh LoRA adapter on the base model."""
    common: dict[str, Any] = dict(base_model_path=base_model_path, lora_cfg=config.model.lora,
                                  learner_cfg=config.learner, work_dir=work_dir, seed=config.experiment.seed,
                                  dtype=config.model.dtype, progress=progress)
    algorithm = config.learner.algorithm
    if algorithm == "dpo":
        return PairwiseDPOLearner(**common)
    if algorithm == "sft":
        return SFTLearner(**common)
    if algorithm == "grpo":
        from curriculum.training.grpo import GRPOLearner

        return GRPOLearner(**common, group_size=config.solver.attempts, temperature=config.solver.temperature,
                           max_completion_length=config.solver.max_new_tokens)
    raise ValueError(f"learner.algorithm: unknown algorithm '{algorithm}' (dpo, grpo or sft)")
