"""The Learner role: turns a round's graded attempts into an update of the student's LoRA adapter
and publishes it as the next policy version.

`learner.algorithm` picks the algorithm (one class each, all subclasses of
`training.policy.PolicyLearner`): dpo (Socratic-Zero preference pairs, training/dpo.py), grpo
(groups with SwS's difficulty filter, training/grpo.py) or sft (rejection-sampling fine-tuning,
training/sft.py). The loop never branches on it: it hands every Learner a `LearnBatch` and gets
a `LearnOutcome` back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curriculum.config import Config


def learner_class(algorithm: str) -> type:
    from curriculum.training.dpo import DPOLearner
    from curriculum.training.grpo import GRPOLearner
    from curriculum.training.sft import SFTLearner

    classes = {"dpo": DPOLearner, "grpo": GRPOLearner, "sft": SFTLearner}
    if algorithm not in classes:
        raise ValueError(f"learner.algorithm: unknown algorithm '{algorithm}' ({', '.join(classes)})")
    return classes[algorithm]


def make_learner(
    config: Config, base_model_path: str | Path, work_dir: str | Path, device: str = "cpu", progress: bool = False
) -> Any:
    """The Learner of `learner.algorithm`, holding a fresh LoRA adapter on the base model."""
    settings: dict[str, Any] = dict(
        base_model_path=base_model_path,
        lora_cfg=config.model.lora,
        learner_cfg=config.learner,
        work_dir=work_dir,
        seed=config.experiment.seed,
        dtype=config.model.dtype,
        device=device,
        progress=progress,
        rounds=config.loop.rounds,
    )
    if config.learner.algorithm == "grpo":  # GRPO scores the Solver's groups at its sampling settings
        settings.update(
            group_size=config.solver.attempts,
            temperature=config.solver.temperature,
            max_completion_length=config.solver.max_new_tokens,
        )
    return learner_class(config.learner.algorithm)(**settings)
