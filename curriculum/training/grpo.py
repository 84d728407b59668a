"""The GRPO Learner: TRL's GRPOTrainer on the Solver's graded attempts, with SwS's online
difficulty filter.

One group = the k attempts the Solver sampled at one problem (k = `solver.attempts`), the
reward of each = its verifier grade (stored on the attempt). GRPO's advantage is the reward
minus the group mean (over the group std), so a group whose attempts are all right or all wrong
contributes nothing. The difficulty filter drops such groups (solve rate outside
`learner.grpo.filter_low..filter_high`) and refills the batch from the rest of the round's
groups: the round's problems are an oversampled pool (`loop.problems_per_round` >
`groups_per_step x steps_per_round`).

The attempts are not generated again. TRL 1.16's GRPOTrainer takes a `rollout_func`
(experimental) that replaces its generation step; ours serves each prompt's stored completions,
so TRL's loss, clipping, KL and logging run unchanged on the Solver's samples. In sync mode the
Solver sampled them with the current policy version (the one this Learner holds), so they are on
policy; in async mode (loop.mode) with the version before it, and the correction below weighs
them by the ratio of the current policy to the one that sampled them (AReaL's decoupled loss:
TRL's "old" log-probs are the current policy's, the behaviour policy's are the recorded ones).
All of a round's groups are served as one generation batch, and TRL keeps their log-probs from
before the first step, so later steps of the round are importance-weighted and clipped like PPO
epochs. (The loss scores tokens at the Solver's temperature without its top_p
truncation: with solver.top_p < 1 the ratio is taken against the untruncated distribution.)

The served completions are the Solver's sampled token ids (`Attempt.token_ids`), with the
per-token log-probs the Solver's engine sampled them with. TRL corrects for the mismatch between
that sampler (vLLM in bf16, say) and the trainer's own log-probs by truncated importance
sampling (`learner.grpo.importance_sampling`, TRL's `vllm_importance_sampling_mode`); see
`use_rollout_logprobs` for how it is switched on with our rollouts.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from curriculum.records import rate_within
from curriculum.training.adapter import AdapterState, quiet_datasets
from curriculum.training.batch import Group, LearnBatch, LearnOutcome
from curriculum.training.retention import AnchorLoss, anchored

log = logging.getLogger(__name__)

# Per-step metrics of TRL's GRPOTrainer that `update_groups` reports (means over the round's steps).
GRPO_METRICS = (
    "loss",
    "reward",
    "reward_std",
    "frac_reward_zero_std",
    "kl",
    "entropy",
    "clip_ratio/region_mean",
    "completions/mean_length",
    # sampler vs trainer: mean |log-prob difference| per token, and the correction's weights
    "sampling/sampling_logp_difference/mean",
    "sampling/sampling_logp_difference/max",
    "sampling/importance_sampling_ratio/min",
    "sampling/importance_sampling_ratio/mean",
)


@dataclass(frozen=True)
class FilteredBatch:
    """The difficulty filter's verdict on a round's pool of groups (all in pool order)."""

    kept: list[Group]  # the batch: in-band groups, at most `need`
    dropped: list[Group]  # out-of-band groups met while filling the batch
    unused: list[Group]  # the rest of the pool, not looked at once the batch was full


def in_filter_band(group: Group, low: float, high: float) -> bool:
    return bool(group.attempts) and rate_within(group.solve_rate, low, high)


def difficulty_filter(pool: Sequence[Group], low: float, high: float, need: int | None) -> FilteredBatch:
    """Fill a batch of `need` groups (None: as many as there are) from `pool` in order, dropping
    each group whose solve rate is outside [low, high]; each dropped group's slot goes to the
    next group of the pool (SwS: with 8 samples, [0.125, 0.875] drops all-right and all-wrong)."""
    kept: list[Group] = []
    dropped: list[Group] = []
    for index, group in enumerate(pool):
        if need is not None and len(kept) == need:
            return FilteredBatch(kept, dropped, list(pool[index:]))
        (kept if in_filter_band(group, low, high) else dropped).append(group)
    return FilteredBatch(kept, dropped, [])


def verifier_reward(prompts: list[Any], completions: list[Any], reward: list[float], **_: Any) -> list[float]:
    """TRL reward function: the verifier's grade of each attempt, served alongside it (`reward`)."""
    return [float(r) for r in reward]


class GroupServer:
    """TRL `rollout_func` that hands back stored attempts instead of generating.

    TRL calls it with each prompt of the generation batch repeated `num_generations` times in a
    row; the i-th call for a prompt gets that group's i-th attempt: its token ids, its reward and
    (when every attempt has them, see `rollout_logprobs`) its sampling log-probs per token.
    """

    def __init__(self, groups: Sequence[Group], tokenizer: Any, group_size: int):
        self.group_size = group_size
        prompt_ids = tokenizer([g.prompt for g in groups])["input_ids"]  # as the Solver's engine encodes them
        self.groups: dict[str, tuple[list[int], list[list[int]], list[float], list[list[float] | None]]] = {}
        for group, ids in zip(groups, prompt_ids):
            if group.prompt in self.groups:
                raise ValueError(f"two groups share the prompt of problem {group.problem.id}")
            attempts = sorted(group.attempts, key=lambda a: a.sample_index)[:group_size]
            if len(attempts) < group_size:
                raise ValueError(f"problem {group.problem.id} has {len(attempts)} attempts, GRPO needs {group_size}")
            self.groups[group.prompt] = (
                ids,
                [completion_ids(a, tokenizer) for a in attempts],
                [a.reward for a in attempts],
                [rollout_logprobs(a) for a in attempts],
            )
        # TRL takes log-probs for all completions of a batch or for none
        self.without_logprobs = sum(
            logprobs is None for *_, per_group in self.groups.values() for logprobs in per_group
        )
        self.has_logprobs = bool(self.groups) and not self.without_logprobs

    def __call__(self, prompts: list[str], trainer: Any = None) -> dict[str, Any]:
        return self.serve(prompts, earlier_workers_prompts(prompts, trainer))

    def serve(self, prompts: list[str], earlier: Sequence[Sequence[str]] = ()) -> dict[str, Any]:
        """The attempts for `prompts`; `earlier`: the prompts the data-parallel workers before this one
        were handed in the same generation batch. TRL's sampler may split a group between workers,
        and each attempt goes to one of them: the i-th occurrence of a prompt over all workers, in
        rank order, gets the group's i-th attempt."""
        served: dict[str, int] = {}
        for before in earlier:
            for prompt in before:
                served[prompt] = served.get(prompt, 0) + 1
        out: dict[str, Any] = {
            "prompt_ids": [],
            "completion_ids": [],
            "logprobs": [] if self.has_logprobs else None,
            "reward": [],
        }
        for prompt in prompts:
            ids, completions, rewards, logprobs = self.groups[prompt]
            i = served.get(prompt, 0) % self.group_size
            served[prompt] = served.get(prompt, 0) + 1
            out["prompt_ids"].append(ids)
            out["completion_ids"].append(completions[i])
            out["reward"].append(rewards[i])
            if self.has_logprobs:
                out["logprobs"].append(logprobs[i])
        return out


def earlier_workers_prompts(prompts: list[str], trainer: Any) -> list[list[str]]:
    """The prompts of this generation batch that data-parallel workers of lower rank were handed
    (none without data parallelism). Every worker calls the rollout function at the same point of a
    step, so the exchange is a collective all of them reach."""
    accelerator = getattr(trainer, "accelerator", None)
    if accelerator is None or accelerator.num_processes == 1:
        return []
    from accelerate.utils import gather_object

    everyone = gather_object([list(prompts)])  # one list per worker, in rank order
    return everyone[: accelerator.process_index]


def completion_ids(attempt: Any, tokenizer: Any) -> list[int]:
    """The sampled token ids of an attempt, as the Solver kept them.

    Attempts stored before schema version 5 kept only text and a token count: their text is
    re-tokenized, plus eos when the count says the sample ended with it (exact for the character
    tokenizer, not in general for BPE).
    """
    if attempt.token_ids:
        return list(attempt.token_ids)
    ids = tokenizer(attempt.completion, add_special_tokens=False)["input_ids"]
    if attempt.num_tokens > len(ids):
        ids = ids + [tokenizer.eos_token_id]
    return ids


def rollout_logprobs(attempt: Any) -> list[float] | None:
    """The sampling log-prob of each of the attempt's tokens, or None when it has none (older store)."""
    if attempt.token_ids and len(attempt.token_logprobs) == len(attempt.token_ids):
        return list(attempt.token_logprobs)
    return None


class _PolicyPublishedBySolvers:
    """Stands where TRL keeps its own vLLM: our Solvers sample, and they receive the policy when the
    Learner publishes it at the end of the round, so there are no weights to sync per step."""

    def sync_weights(self) -> None:
        pass


def use_rollout_logprobs(trainer: Any) -> None:
    """Switch on TRL 1.16's importance-sampling correction for served rollouts.

    GRPOTrainer applies it (the ratio of its own log-probs to the sampler's, clipped or masked per
    `vllm_importance_sampling_mode`) only when `use_vllm` is set, and with a rollout_func it then
    syncs the weights of its own vLLM before each generation batch. Our rollouts come from the
    Solvers with their sampling log-probs, so the trainer is told it samples with vLLM and its
    weight sync is a no-op (grpo_trainer.py: `_generate_single_turn` and `use_vllm` at init are
    not reached with a rollout_func).
    """
    trainer.use_vllm = True
    trainer.vllm_generation = _PolicyPublishedBySolvers()
    trainer._last_loaded_step = -1


class GRPO:
    """GRPO on the round's groups, with the difficulty filter, on the shared adapter state."""

    def __init__(self, state: AdapterState, group_size: int, temperature: float, max_completion_length: int) -> None:
        self.state = state
        if group_size < 2:
            raise ValueError(f"GRPO needs groups of at least 2 attempts, got {group_size}")
        self.group_size = group_size
        # The loss's log-probs use the Solver's sampling temperature, so the importance ratio
        # compares the same distributions the attempts were drawn from.
        self.temperature = temperature
        self.max_completion_length = max_completion_length

    def learn(self, batch: LearnBatch) -> LearnOutcome:
        cfg = self.state.learner_cfg
        need = cfg.steps_per_round * cfg.grpo.groups_per_step if cfg.steps_per_round else None
        pool = [g for g in batch.groups if len(g.attempts) >= self.group_size]
        filtered = difficulty_filter(pool, *cfg.grpo.band(self.group_size), need)
        anchor = self.state.anchor_for(batch, cfg.grpo.groups_per_step * self.group_size)
        metrics = self.update_groups(filtered.kept, batch.round, anchor)
        metrics.update(
            groups_pool=float(len(pool)),
            groups_kept=float(len(filtered.kept)),
            groups_dropped=float(len(filtered.dropped)),
            groups_unused=float(len(filtered.unused)),
            groups_short=float(need - len(filtered.kept)) if need else 0.0,
        )
        return LearnOutcome(metrics)

    def update_groups(self, groups: Sequence[Group], round: int, anchor: AnchorLoss | None = None) -> dict[str, float]:
        """GRPO steps on `groups`: `steps_per_round` steps (default: `epochs` passes), each over
        `groups_per_step` groups; with fewer groups than that the batch shrinks to all of them,
        and with fewer than the steps need the groups are passed over again."""
        cfg = self.state.learner_cfg
        per_step = min(cfg.grpo.groups_per_step, len(groups))
        if per_step == 0:
            self.state.last_log_history = []
            return {"steps": 0.0}
        start = time.perf_counter()
        batches = len(groups) // per_step
        groups = list(groups[: batches * per_step])  # a remainder smaller than a step stays out
        steps = cfg.steps_per_round or max(1, math.ceil(cfg.epochs * batches))
        server = GroupServer(groups, self.state.tokenizer, self.group_size)
        correction = self.state.learner_cfg.grpo.importance_sampling != "off"
        corrected = correction and server.has_logprobs
        if correction and not corrected:  # TRL takes log-probs for the whole batch or none: say so
            log.warning(
                "GRPO round %d: %d of %d attempts have no sampling log-probs (stored by an older version?): "
                "importance sampling (learner.grpo.importance_sampling=%s) is off for this round's batch",
                round,
                server.without_logprobs,
                len(groups) * self.group_size,
                self.state.learner_cfg.grpo.importance_sampling,
            )
        with quiet_datasets(not self.state.progress):
            trainer = self._grpo_trainer(groups, server, per_step, batches, steps, round, anchor, corrected)
        setup = time.perf_counter() - start  # the data and the round's trainer, before the first step
        self.state.use_base_as_reference()
        steps_done = self.state.run_trainer(trainer)
        metrics = {
            key: _mean(self.state.last_log_history, key)
            for key in GRPO_METRICS  # kl: only with kl_beta > 0
            if any(key in entry for entry in self.state.last_log_history)
        }
        metrics.update(
            steps=float(steps_done),
            groups=float(len(groups)),
            seconds=time.perf_counter() - start,
            setup_seconds=setup,
            **(anchor.metrics() if anchor else {}),
            attempts_without_logprobs=float(server.without_logprobs),
            importance_sampling_off=float(correction and not corrected),
        )
        return metrics

    def _grpo_trainer(
        self,
        groups: Sequence[Group],
        server: GroupServer,
        per_step: int,
        batches: int,
        steps: int,
        round: int,
        anchor: AnchorLoss | None = None,
        corrected: bool = False,
    ) -> Any:
        """The round's GRPOTrainer over `groups` served by `server`; `corrected`: with TRL's importance
        sampling on the served log-probs."""
        from datasets import Dataset
        from transformers import PrinterCallback
        from trl import GRPOConfig, GRPOTrainer

        cfg = self.state.learner_cfg
        grpo = cfg.grpo
        step = per_step * self.group_size  # sequences per optimizer step
        # learner.micro_batch_size divides a full step (config.py); a round with fewer groups than
        # groups_per_step has a smaller step, split by its largest divisor that is not above it
        micro = _largest_divisor(step, cfg.micro_batch_size or step)
        shared = self.state.trainer_args("grpo", round, step, "learner.grpo.groups_per_step x solver.attempts", micro)
        args = GRPOConfig(
            **shared,
            num_generations=self.group_size,
            # The whole round is one generation batch (served once, old log-probs taken then), split
            # into `batches` steps of `gradient_accumulation_steps` micro-batches each; num_iterations
            # passes over it cover `steps`.
            steps_per_generation=batches * shared["gradient_accumulation_steps"],
            num_iterations=math.ceil(steps / batches),
            max_steps=steps,
            max_completion_length=self.max_completion_length,
            temperature=self.temperature,
            beta=grpo.kl_beta,
            epsilon=grpo.epsilon,
            loss_type=grpo.loss_type,
            scale_rewards=grpo.scale_rewards,
            log_completions=False,
            vllm_importance_sampling_correction=corrected,
            **({"vllm_importance_sampling_mode": grpo.importance_sampling} if corrected else {}),
        )
        dataset = Dataset.from_dict({"prompt": [g.prompt for g in groups]})
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*rollout_func.*experimental")
            trainer = anchored(GRPOTrainer, anchor)(
                model=self.state.model,
                reward_funcs=[verifier_reward],
                args=args,
                train_dataset=dataset,
                processing_class=self.state.tokenizer,
                rollout_func=server,
                optimizers=self.state.optimizers,
            )
        if corrected:
            use_rollout_logprobs(trainer)
        if not self.state.progress:
            trainer.remove_callback(PrinterCallback)
        return trainer


def _largest_divisor(n: int, at_most: int) -> int:
    return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)


def _mean(history: Sequence[dict[str, float]], key: str) -> float:
    values = [float(entry[key]) for entry in history if key in entry]
    return sum(values) / len(values) if values else math.nan
