"""Value-weighted SFT: TRL's SFTTrainer with a per-example weight on the loss.

Each example's loss is the mean negative log-likelihood of its completion tokens (the
prompt is masked, as in plain SFT), multiplied by the example's `weight`; a batch's
loss is the mean of these over the examples of the batch. Normalising by the number of
examples, not by the sum of weights, keeps the weights absolute: a batch of low-value
examples makes a small update, and a weight of 0 removes an example's gradient.

How the `weight` column reaches the loss in TRL 1.16 (checked in its source):
- `SFTTrainer._prepare_dataset` tokenizes with `Dataset.map` and keeps other columns,
  so `weight` survives tokenization, label building and truncation (packing would drop
  it: `select_columns(["input_ids", "labels"])`, so packing is refused here).
- With `remove_unused_columns=True` (the default) `Trainer` drops every column outside
  `_signature_columns`, which `SFTTrainer._set_signature_columns_if_needed` sets to
  `["input_ids", "labels", "seq_lengths"]`; we add `"weight"` there (what TRL's DPO
  trainer does for its own columns).
- `DataCollatorForLanguageModeling.torch_call` builds its batch from `input_ids`,
  `labels` and `seq_lengths` only, so `WeightedCollator` wraps it and adds the weights
  as a tensor. Padding-free batches flatten all examples into one row, so that mode is
  refused too.
- `SFTTrainer.compute_loss` calls the model with `fused_lm_head=True` (patched in by
  `trl.trainer.utils.add_fused_lm_head`), which returns per-token `log_probs` (zero
  where the label is -100) and the `label_mask`; we reduce those per example instead
  of over the whole batch. `loss_is_scaled_for_ga = False` tells `Trainer` (>= 5.19) to
  divide by the gradient-accumulation steps itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from trl import SFTTrainer

from curriculum.training.sft import make_sft_trainer

WEIGHT_COLUMN = "weight"


def build_weighted_dataset(
    prompts: Sequence[str], completions: Sequence[str], weights: Sequence[float], eos_token: str
) -> Any:
    """A prompt-completion `datasets.Dataset` with a `weight` column; completions get `eos_token`."""
    from datasets import Dataset

    if not len(prompts) == len(completions) == len(weights):
        raise ValueError(
            f"got {len(prompts)} prompts, {len(completions)} completions and {len(weights)} weights; "
            "they must be equally many"
        )
    check_weights(weights)
    return Dataset.from_dict(
        {
            "prompt": list(prompts),
            "completion": [c + eos_token for c in completions],
            WEIGHT_COLUMN: [float(w) for w in weights],
        }
    )


def check_weights(weights: Sequence[float]) -> None:
    for index, weight in enumerate(weights):
        if not (weight >= 0 and weight != float("inf")):  # also rejects NaN
            raise ValueError(f"weight {index} is {weight}; weights must be finite and >= 0")


class WeightedCollator:
    """Wraps TRL's collator: the same padded batch plus a float `weight` tensor (one per example)."""

    def __init__(self, base: Any) -> None:
        self.base = base

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        missing = [i for i, example in enumerate(examples) if WEIGHT_COLUMN not in example]
        if missing:
            raise ValueError(
                f"example {missing[0]} of the batch has no '{WEIGHT_COLUMN}' field; the dataset needs a weight column"
            )
        batch = self.base(examples)
        batch[WEIGHT_COLUMN] = torch.tensor([float(e[WEIGHT_COLUMN]) for e in examples], dtype=torch.float32)
        return batch


class WeightedSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss is the weight-scaled mean completion loss per example, averaged over the batch."""

    loss_is_scaled_for_ga = False  # per micro-batch means: Trainer divides by the accumulation steps
    data_collator: Any  # TRL's, set by SFTTrainer
    _signature_columns: list[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.args.packing:
            raise ValueError("WeightedSFTTrainer needs packing=False: a packed row mixes examples of different weights")
        if self.padding_free:
            raise ValueError("WeightedSFTTrainer needs padding_free=False: it flattens a batch into one row")
        for name, dataset in (("train", self.train_dataset), ("eval", self.eval_dataset)):
            if dataset is None or isinstance(dataset, dict):
                continue
            columns = dataset.column_names
            if columns is not None and WEIGHT_COLUMN not in columns:
                raise ValueError(f"the {name} dataset has no '{WEIGHT_COLUMN}' column (columns: {', '.join(columns)})")
        self.data_collator = WeightedCollator(self.data_collator)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if WEIGHT_COLUMN not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, WEIGHT_COLUMN]

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        mode = "train" if self.model.training else "eval"
        inputs = dict(inputs)
        weights = inputs.pop(WEIGHT_COLUMN)
        outputs = model(**inputs, use_cache=False, fused_lm_head=True)
        loss = weighted_example_loss(outputs.log_probs, outputs.label_mask, weights)

        # The metrics SFTTrainer logs, plus the mean weight of the batch
        mask = outputs.label_mask
        valid = self.accelerator.gather_for_metrics(mask.sum()).sum()
        entropy = self.accelerator.gather_for_metrics(outputs.entropy.detach().sum()).sum()
        correct = self.accelerator.gather_for_metrics(outputs.is_top1.sum()).sum()
        self._metrics[mode]["entropy"].append((entropy / valid).item() if valid > 0 else 0.0)
        self._metrics[mode]["mean_token_accuracy"].append((correct / valid).item() if valid > 0 else 0.0)
        self._metrics[mode]["mean_weight"].append(float(weights.float().mean()))
        if mode == "train":
            self._total_train_tokens += int(inputs["attention_mask"].sum()) // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

        if return_outputs:  # the fused head has no logits; compute them for callers that ask
            with torch.no_grad():
                outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
            return loss, outputs
        return loss


def weighted_example_loss(log_probs: torch.Tensor, label_mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """mean_i( weight_i * mean over i's completion tokens of -log p ).

    `log_probs` and `label_mask` are (batch, tokens) with `log_probs` zero where masked; an
    example without completion tokens contributes zero.
    """
    tokens = label_mask.sum(dim=1).clamp(min=1)
    per_example = -(log_probs * label_mask).sum(dim=1) / tokens
    return (weights.to(per_example.dtype) * per_example).sum() / max(len(weights), 1)


def make_weighted_sft_trainer(model: Any, tokenizer: Any, dataset: Any, args: Any, **kwargs: Any) -> WeightedSFTTrainer:
    """`make_sft_trainer` (same quiet set-up) building the weighted trainer."""

    return make_sft_trainer(model, tokenizer, dataset, args, trainer_class=WeightedSFTTrainer, **kwargs)
