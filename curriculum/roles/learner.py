"""The Learner role: turns a round's graded attempts into an update of the student's LoRA adapter
and publishes it as the next policy version.

A Learner is composed, not subclassed: the student's adapter state (model, LoRA, optimizer,
publish/restore; training/adapter.py) plus the algorithm of `learner.algorithm` that trains it:
dpo (Socratic-Zero preference pairs, training/dpo.py), grpo (groups with SwS's difficulty filter,
training/grpo.py) or sft (rejection-sampling fine-tuning, training/sft.py). The loop never branches
on it: it hands every Learner a `LearnBatch` and gets a `LearnOutcome` back.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Protocol

from curriculum.config import Config
from curriculum.rundir import policy_dir_name
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

    KEEP = 2  # published folders kept in the work folder: Solvers on this node load them from there

    def __init__(self, algorithm: Algorithm) -> None:
        self.algorithm = algorithm
        self.state = algorithm.state

    def learn(self, batch: LearnBatch) -> LearnOutcome:
        return self.algorithm.learn(batch)

    def publish(self, version: int) -> PolicyRef:
        """Write policy `version` into this node's work folder; its checkpoint's files travel with
        the answer (the driver writes them into the run directory, curriculum/rundir.py)."""
        published = self.state.work_dir / "published"
        for old in sorted(published.glob("policy_v*"))[: 1 - self.KEEP]:  # Solvers here may read the last one
            shutil.rmtree(old, ignore_errors=True)
        return self.state.publish(version, published / policy_dir_name(version))

    def restore(self, checkpoint: PolicyRef) -> int:
        """Back to a checkpoint `publish` made (sent by the driver from the run directory)."""
        return self.state.restore(checkpoint.files.write(self.state.work_dir / "restored"))


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
    config: Config, base_model_path: str | Path, work_dir: str | Path, device: str = "cpu", progress: bool = False
) -> Learner:
    """The Learner of `learner.algorithm`, holding a fresh LoRA adapter on the base model."""
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
    )
    return Learner(make_algorithm(config, state))
