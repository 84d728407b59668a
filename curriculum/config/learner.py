"""learner: the algorithm (dpo, grpo, sft) and its settings; generator: the problem-writing model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from curriculum.config.base import Section


class GRPOSettings(Section):
    """GRPO on the Solver's groups: one group = the `solver.attempts` graded attempts at one problem."""

    groups_per_step: int = Field(default=4, ge=1, description="problems (groups) per optimizer step")
    # SwS's online difficulty filter: a group whose solve rate is outside the band has zero
    # advantage everywhere (all right or all wrong), so it is dropped and the batch is refilled from
    # the rest of the round's (oversampled) groups. Multiples of 1/solver.attempts; the default
    # (None) is 1/k and 1 - 1/k, i.e. [0.125, 0.875] with 8 samples: drop all-right and all-wrong.
    filter_low: float | None = Field(default=None, ge=0, le=1, description="default: 1/solver.attempts")
    filter_high: float | None = Field(default=None, ge=0, le=1, description="default: 1 - 1/solver.attempts")

    def band(self, attempts: int) -> tuple[float, float]:
        """(low, high) of the filter for groups of `attempts` samples."""
        low = 1 / attempts if self.filter_low is None else self.filter_low
        high = 1 - 1 / attempts if self.filter_high is None else self.filter_high
        return low, high

    kl_beta: float = Field(default=0.0, ge=0, description="KL weight to the base model (TRL beta); 0: no reference")
    epsilon: float = Field(default=0.2, gt=0, description="PPO clip range")
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    importance_sampling: Literal["sequence_mask", "sequence_truncate", "token_mask", "token_truncate", "off"] = Field(
        default="sequence_mask",
        description="TRL's correction for the mismatch between the Solver's sampling "
        "log-probs and the trainer's (vllm_importance_sampling_mode, ratios capped at 3); off: none",
    )


class RetentionConfig(Section):
    """Keeping what the student knew (training/retention.py), for every learner: replay of verified
    successes as an NLL anchor, and a KL term to the base model on the same tokens."""

    anchor_weight: float = Field(
        default=0.0,
        ge=0,
        description="weight of the NLL of one correct attempt of each "
        "problem solved at least anchor_min_solve_rate of the time this round, added to every "
        "training step (such a problem gives DPO and GRPO no gradient of their own)",
    )
    anchor_min_solve_rate: float = Field(
        default=1.0, gt=0, le=1, description="problems solved at least this often this round are anchored (1.0: k of k)"
    )
    anchor_batch_size: int | None = Field(
        default=None, ge=1, description="anchors per step; default: learner.batch_size"
    )
    kl_weight: float = Field(
        default=0.0,
        ge=0,
        description="weight of KL(policy || base) on the anchors' tokens: a "
        "KL anchor for learners that have none of their own (SFT; GRPO with kl_beta 0)",
    )
    replay_per_level: int = Field(
        default=0,
        ge=0,
        description="anchors from earlier rounds too: up to this many problems a level that this "
        "round did not attempt and that were solved at least anchor_min_solve_rate of the time the "
        "last round they were attempted, one correct attempt each (a replay buffer over the run, "
        "as RLEP keeps; a level the curriculum has moved past is still anchored); 0: this round only",
    )

    @model_validator(mode="after")
    def _replay_is_anchored(self) -> RetentionConfig:
        if self.replay_per_level and self.anchor_weight == 0 and self.kl_weight == 0:
            raise ValueError(
                f"learner.retention.replay_per_level={self.replay_per_level} replays anchors, but "
                "anchor_weight and kl_weight are both 0, so no anchor is trained on: set one of them"
            )
        return self


class LearnerConfig(Section):
    algorithm: Literal["dpo", "grpo", "sft"] = Field(
        default="dpo",
        description="dpo: preference pairs; grpo: groups with the difficulty filter; "
        "sft: correct attempts (or the reference solution when all fail)",
    )
    beta: float = Field(default=0.1, gt=0)
    pairing: Literal["first", "all"] = Field(default="all", description="wrong attempts paired per problem")
    max_pairs_per_problem: int = Field(default=4, ge=1)
    rpo_alpha: float | None = Field(default=None, ge=0, description="NLL weight on chosen (TRL rpo_alpha)")
    learning_rate: float = Field(default=5e-4, gt=0)
    # The optimizer carries over from round to round. "cosine" decays to zero within each round (warm
    # restarts: every published policy is an annealed one); "cosine_run" is one cosine over the whole
    # run (loop.rounds x steps_per_round), which does not restart.
    lr_schedule: Literal["constant", "cosine", "cosine_run"] = Field(default="constant")
    warmup_ratio: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="share of the schedule's steps warming up (a round's; the run's with cosine_run)",
    )
    epochs: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=16, ge=1, description="pairs (dpo) or examples (sft) per optimizer step")
    steps_per_round: int | None = Field(
        default=None,
        ge=1,
        description="optimizer steps per round whatever the data size (equal compute "
        "across recipes); default: `epochs` passes over the round's data",
    )
    micro_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="examples per forward/backward pass; gradients accumulate up to the "
        "step (learner.batch_size, or grpo.groups_per_step x solver.attempts sequences for GRPO), so "
        "the update is the same and only memory changes; must divide the step (at least the step: "
        "the step in one pass); default: the whole step",
    )
    gradient_checkpointing: bool = Field(
        default=False,
        description="recompute activations in the backward pass: far less memory for "
        "long sequences, ~1/3 more compute (on the toy it only costs time)",
    )
    grpo: GRPOSettings = GRPOSettings()
    retention: RetentionConfig = RetentionConfig()

    @model_validator(mode="after")
    def _micro_batch_divides_the_step(self) -> LearnerConfig:
        micro = self.micro_batch_size
        if micro is not None and self.algorithm != "grpo" and micro < self.batch_size and self.batch_size % micro:
            raise ValueError(
                f"learner.micro_batch_size={micro} must divide learner.batch_size={self.batch_size} "
                "(gradients accumulate over whole micro-batches)"
            )
        return self

    @model_validator(mode="after")
    def _run_schedule_needs_steps(self) -> LearnerConfig:
        if self.lr_schedule == "cosine_run" and self.steps_per_round is None:
            raise ValueError("learner.lr_schedule=cosine_run needs learner.steps_per_round (the run's length in steps)")
        return self


class GeneratorConfig(Section):
    enabled: bool = True
    warmup_rounds: int = Field(default=2, ge=0, description="rounds of training before it proposes")
    proposals_per_round: int = Field(default=16, ge=0)
    window_rounds: int | None = Field(
        default=10,
        ge=1,
        description="the Generator trains on the Teacher's (failed problem -> new problem) pairs of this many "
        "last rounds, so a round's distillation does not grow with the run; null: of every round so far "
        "(the default changes nothing in a run of up to 10 rounds)",
    )
    usefulness_center: float = Field(default=0.5, ge=0, le=1)
    usefulness_width: float = Field(default=0.25, gt=0)
    learning_rate: float = Field(default=1e-3, gt=0)
    epochs: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=16, ge=1)
    micro_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="examples per forward/backward pass of the Generator's SFT; gradients "
        "accumulate up to generator.batch_size, which it must divide (at least the batch: one pass); "
        "default: the whole batch",
    )
    gradient_checkpointing: bool = Field(
        default=False, description="recompute activations in the backward pass (less memory, more compute)"
    )
    temperature: float = Field(default=1.0, gt=0)
    max_new_tokens: int = Field(default=128, ge=1)
    label_checks: int = Field(
        default=2,
        ge=0,
        description="on a world without an oracle (a dataset): per round, this many of the Generator's "
        "parents that carry the dataset's reference answer are voted on by the same labeller as its drafts, "
        "and the vote compared with the reference (labels/reference_agreement): how far to trust the "
        "labels; each costs teacher.labels.samples calls; 0: none",
    )

    @model_validator(mode="after")
    def _micro_batch_divides_the_batch(self) -> GeneratorConfig:
        micro = self.micro_batch_size
        if micro is not None and micro < self.batch_size and self.batch_size % micro:
            raise ValueError(f"generator.micro_batch_size={micro} must divide generator.batch_size={self.batch_size}")
        return self
