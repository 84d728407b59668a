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
from curriculum.gpu import out_of_memory_names, take_peak_memory_gib
from curriculum.rundir import policy_dir_name
from curriculum.training import distributed
from curriculum.training.adapter import AdapterState
from curriculum.training.batch import LearnBatch, LearnOutcome, PolicyRef
from curriculum.training.dpo import DPO
from curriculum.training.grpo import GRPO
from curriculum.training.sft import SFT

OOM_SETTING = "learner.micro_batch_size (or set learner.gradient_checkpointing=true)"


class Algorithm(Protocol):
    """One round of training of `state` (the algorithm's own) on a round's graded attempts."""

    state: AdapterState

    def learn(self, batch: LearnBatch) -> LearnOutcome: ...


class Learner:
    """The adapter state and the algorithm that trains it (what the Learner's actor hosts)."""

    KEEP = 2  # published folders kept in the work folder: Solvers on this node load them from there

    def __init__(self, algorithm: Algorithm, max_staleness: int | None = None) -> None:
        self.algorithm = algorithm
        self.state = algorithm.state
        self.max_staleness = max_staleness  # loop.max_staleness in async mode; None (no bound) in sync mode

    def learn(self, batch: LearnBatch) -> LearnOutcome:
        """The algorithm's round on the batch's groups sampled at most `max_staleness` versions back
        (the others are dropped and counted: stale_groups_dropped), plus what it cost: seconds per
        optimizer step and the peak GPU memory (GiB, 0 on CPU). Out of GPU memory, the run ends with
        the setting to lower."""
        take_peak_memory_gib()  # the peak of this round only
        self.state.last_step_seconds = 0.0  # a round without data takes no step
        staleness = max((batch.staleness(g) for g in batch.groups), default=0)
        dropped = 0
        if self.max_staleness is not None:
            batch, dropped = batch.drop_stale(self.max_staleness)
        with out_of_memory_names("Learner", OOM_SETTING):
            outcome = self.algorithm.learn(batch)
        outcome.metrics.update(
            step_seconds=self.state.last_step_seconds,
            peak_gpu_memory_gib=take_peak_memory_gib(),
            stale_groups_dropped=float(dropped),
            max_staleness_seen=float(staleness),
        )
        return outcome

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
    return Learner(make_algorithm(config, state), config.loop.staleness_bound)


class LearnerWorker:
    """One of `ray.learner.count` data-parallel Learner workers (agents/learner_group.py starts them
    and sends every call to all of them). Built without a model, so a restarted worker answers at
    once; `join` joins the workers' process group and then builds the Learner, whose TRL trainers
    split each step's batch between the workers and all-reduce the gradients (training/distributed.py).
    """

    def __init__(self, config: Config, base_model_path: str | Path, work_dir: str | Path, device: str) -> None:
        self.config, self.base_model_path, self.work_dir, self.device = config, base_model_path, work_dir, device
        self.learner: Learner | None = None

    def free_port(self, host: str) -> int:
        """A free port on this worker's node (rank 0 listens on it for the others to join)."""
        return distributed.free_port(host)

    def join(self, spec: distributed.WorkerSpec) -> None:
        """Join the group (blocks until every worker has; `ray.placement_timeout_s` at most), then load the model."""
        distributed.join(spec, self.device, timeout_s=self.config.ray.placement_timeout_s)
        self.learner = make_learner(
            self.config, self.base_model_path, self.work_dir, device=self.device, world_size=spec.world_size
        )

    def group(self) -> tuple[int, int]:
        """This worker's rank and the size of the process group it trains in."""
        import torch.distributed as dist

        self.joined  # noqa: B018 - raises before the group exists
        return dist.get_rank(), dist.get_world_size()

    @property
    def joined(self) -> Learner:
        if self.learner is None:
            raise RuntimeError("this Learner worker has not joined its group (LearnerWorker.join)")
        return self.learner

    def learn(self, batch: LearnBatch) -> LearnOutcome:
        return self.joined.learn(batch)

    def publish(self, version: int) -> PolicyRef:
        return self.joined.publish(version)

    def restore(self, checkpoint: PolicyRef) -> int:
        return self.joined.restore(checkpoint)
