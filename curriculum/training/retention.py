"""Keeping what the student knew while it learns something new (`learner.retention`).

A preference pair needs a wrong sample and a GRPO group needs mixed rewards, so a problem the
Solver solves k times out of k gives DPO and GRPO no gradient at all: replay of mastered
problems fades exactly when a level is mastered, and the student forgets it. The anchor is
replay of verified successes (RLEP): the negative log-likelihood of one correct attempt of each
such problem, added to every training step of any learner, and optionally a KL term that keeps
the policy's token distribution on those attempts near the base model's.

`anchored(TrainerClass, anchor)` is TRL's trainer class with that extra term in `compute_loss`;
the learner's own loss (DPO, GRPO, SFT) is untouched.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from curriculum.config import RetentionConfig
from curriculum.training.batch import Group


@dataclass(frozen=True)
class AnchorExample:
    problem_id: str
    prompt: str
    completion: str


def anchor_examples(groups: Sequence[Group], min_solve_rate: float) -> list[AnchorExample]:
    """One correct attempt (the first by sample index) of each group solved at least
    `min_solve_rate` of the time, in batch order."""
    anchors = []
    for group in groups:
        if group.attempts and group.solve_rate >= min_solve_rate - 1e-9:
            first = min((a for a in group.attempts if a.correct), key=lambda a: a.sample_index)
            anchors.append(AnchorExample(group.problem.id, group.prompt, first.completion))
    return anchors


@dataclass
class AnchorLoss:
    """The extra loss of each training step: `weight` x NLL of a batch of anchors (completion tokens
    only) + `kl_weight` x KL(policy || base) on the same tokens. Batches cycle through the anchors
    in an order fixed by `seed`."""

    token_ids: list[tuple[list[int], list[int]]]  # (prompt ids, completion ids incl. eos) per anchor
    weight: float
    kl_weight: float
    batch_size: int
    pad_token_id: int
    seed: int
    totals: dict[str, float] = field(default_factory=lambda: {"nll": 0.0, "kl": 0.0, "batches": 0.0})
    _order: list[int] = field(default_factory=list)

    @classmethod
    def build(
        cls, anchors: Sequence[AnchorExample], tokenizer: Any, cfg: RetentionConfig, batch_size: int, seed: int
    ) -> AnchorLoss | None:
        if not anchors or (cfg.anchor_weight == 0 and cfg.kl_weight == 0):
            return None
        eos = tokenizer.eos_token
        token_ids = []
        for anchor in anchors:
            prompt = tokenizer(anchor.prompt, add_special_tokens=False)["input_ids"]
            text = anchor.completion if anchor.completion.endswith(eos) else anchor.completion + eos
            token_ids.append((prompt, tokenizer(text, add_special_tokens=False)["input_ids"]))
        return cls(
            token_ids,
            cfg.anchor_weight,
            cfg.kl_weight,
            batch_size,  # anchors per forward pass (AdapterState.anchor_for)
            tokenizer.pad_token_id,
            seed,
        )

    def _next_batch(self) -> list[int]:
        if len(self._order) < self.batch_size:
            rng = random.Random(self.seed + int(self.totals["batches"]))
            more = list(range(len(self.token_ids)))
            rng.shuffle(more)
            self._order += more * max(1, -(-self.batch_size // len(more)))
        batch, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
        return batch

    def __call__(self, model: Any) -> Any:
        """The term for one step; `model` is the trainer's (PEFT) model."""
        import torch
        import torch.nn.functional as F

        rows = [self.token_ids[i] for i in self._next_batch()]
        width = max(len(p) + len(c) for p, c in rows)
        device = next(model.parameters()).device
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (prompt, completion) in enumerate(rows):  # right padding: positions start at 0
            ids = prompt + completion
            input_ids[r, : len(ids)] = torch.tensor(ids)
            labels[r, len(prompt) : len(ids)] = torch.tensor(completion)
            mask[r, : len(ids)] = 1
        input_ids, labels, mask = input_ids.to(device), labels.to(device), mask.to(device)
        logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
        targets = labels[:, 1:]
        scored = targets != -100
        logp = F.log_softmax(logits, dim=-1)
        nll = -logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)[scored].mean()
        loss = self.weight * nll
        kl = torch.zeros((), device=device)
        if self.kl_weight:
            with torch.no_grad(), model.disable_adapter():
                base_logp = F.log_softmax(model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float(), -1)
            kl = (logp.exp() * (logp - base_logp)).sum(-1)[scored].mean()  # KL(policy || base) per token
            loss = loss + self.kl_weight * kl
        self.totals["nll"] += float(nll.detach())
        self.totals["kl"] += float(kl.detach())
        self.totals["batches"] += 1
        return loss

    def metrics(self) -> dict[str, float]:
        batches = self.totals["batches"] or 1.0
        return {
            "retention/anchors": float(len(self.token_ids)),
            "retention/anchor_nll": self.totals["nll"] / batches,
            "retention/anchor_kl": self.totals["kl"] / batches,
            "retention/anchor_batches": self.totals["batches"],
        }


def anchored(trainer_class: Any, anchor: AnchorLoss | None) -> Any:
    """`trainer_class` (a TRL trainer) with `anchor`'s term added to every step's loss; the class
    itself when there is no anchor."""
    if anchor is None:
        return trainer_class
    term = anchor

    class Anchored(trainer_class):
        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, **kwargs: Any) -> Any:
            result = super().compute_loss(model, inputs, return_outputs=return_outputs, **kwargs)
            extra = term(self.accelerator.unwrap_model(model))
            if model.training and _loss_scaled_for_accumulation(self, kwargs.get("num_items_in_batch")):
                # transformers will not divide this pass's loss by the accumulation steps: the
                # learner's loss is normalised over the whole step already, so the anchor's mean is too
                extra = extra / self.current_gradient_accumulation_steps
            if return_outputs:
                loss, outputs = result
                return loss + extra, outputs
            return result + extra

    Anchored.__name__ = f"Anchored{trainer_class.__name__}"
    return Anchored


def _loss_scaled_for_accumulation(trainer: Any, num_items_in_batch: Any) -> bool:
    """Whether transformers' `Trainer.training_step` leaves the loss undivided by the gradient
    accumulation steps (its own rule, transformers 5.19: `loss_is_scaled_for_ga`, else a model
    that takes loss kwargs and a token count for the whole step)."""
    if trainer.loss_is_scaled_for_ga is not None:
        return bool(trainer.loss_is_scaled_for_ga)
    return bool(trainer.model_accepts_loss_kwargs and num_items_in_batch is not None)
