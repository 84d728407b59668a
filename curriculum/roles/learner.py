"""The Learner role: turns a round's graded attempts into an update of the student's LoRA adapter
and publishes it as the next policy version.

A Learner is composed, not subclassed: the student's adapter state (model, LoRA, optimizer,
publish/restore; training/adapter.py) plus the algorithm of `learner.algorithm` that trains it:
dpo (Socratic-Zero preference pairs, training/dpo.py), grpo (groups with SwS's difficulty filter,
training/grpo.py) or sft (rejection-sampling fine-tuning, training/sft.py). The loop never branches
on it: it hands every Learner a `LearnBatch` and gets a `LearnOutcome` back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from curriculum.config import Config
from curriculum.training.adapter import AdapterState
from curriculum.training.batch import LearnBatch, LearnOutcome, PolicyRef
from curriculum.training.dpo import DPO
from curriculum.training.grpo import GRPO
from curriculum.training.sft import SFT


class Algorithm(Protocol):
    """One round of training of `state` (the algorithm's own) on a round's graded attempts."""

    state: AdapterState

    def learn(self, batch: LearnBatch) -> LearnOutcome: ...


class Learner:
    """The adapter state and the algorithm that trains it (what the Learner's actor hosts)."""

    def __init__(self, algorithm: Algorithm) -> None:
        self.algorithm = algorithm
        self.state = algorithm.state

    def learn(self, batch: LearnBatch) -> LearnOutcome:
        return self.algorithm.learn(batch)

    def publish(self, version: int, directory: str) -> PolicyRef:
        return self.state.publish(version, directory)

    def published(self, version: int, directory: str) -> PolicyRef:
        return self.state.published(version, directory)

    def restore(self, directory: str) -> int:
        return self.state.restore(directory)


def make_algorithm(config: Config, state: AdapterState) -> Algorithm:
    """The algorithm of `learner.algorithm` on `state`."""
    algorithm = config.learner.algorithm
    if algorithm == "dpo":
        return DPO(state)
    if algorithm == "sft":
        return SFT(state)
    # GRPO scores the Solver's groups at its sampling settings
    return GRPO(state, config.solver.attempts, config.solver.temperature, config.solver.max_new_tokens)


def make_learner(
    config: Config,
    base_model_path: str | Path,
    work_dir: str | Path,
    device: str = "cpu",
    progress: bool = False,
    world_size: int = 1,
) -> Learner:
    """The Learner of `learner.algorithm`, holding a fresh LoRA adapter on the base model; one of
    `world_size` data-parallel workers when that is above 1 (training/distributed.py)."""
    state = AdapterState(
        base_model_path,
        config.model.lora,
        config.learner,
        work_dir,
        seed=config.experiment.seed,
        dtype=config.model.dtype,
        device=device,
        progress=progress,
        rounds=config.loop.rounds,
        world_size=world_size,
    )
    return Learner(make_algorithm(config, state))
