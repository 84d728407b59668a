"""The inference-engine interface: one call samples a whole round.

A backend (transformers: hf.py, vLLM: vllm.py) takes every prompt of a round at once, so it
can batch and schedule as it likes, and returns `n` samples per prompt, each with its token ids
and per-token log-probs, so no learner has to tokenize the text again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curriculum.errors import CurriculumError


class EngineAsleep(CurriculumError, RuntimeError):
    """An engine asked to sample while asleep (see `InferenceEngine.sleep`)."""


@dataclass(frozen=True)
class Generation:
    """One sampled completion.

    `num_tokens` counts the generated tokens including the stop token; `logprob` is
    the sum of their log-probabilities under the distribution they were sampled from
    (after temperature and top-p; the plain model distribution when greedy).
    `finished` is False when the sample ran into `max_new_tokens` before a stop token.
    `token_ids` are the generated tokens (stop token included); `text` decodes them
    without special tokens; `token_logprobs` holds the log-probability of each of them
    (same distribution as `logprob`, which is their sum).
    """

    text: str
    num_tokens: int
    logprob: float
    finished: bool = True
    token_ids: tuple[int, ...] = ()
    token_logprobs: tuple[float, ...] = ()


class InferenceEngine(ABC):
    """Samples completions from the current policy (base model plus an optional LoRA adapter)."""

    #: the tokenizer prompts are built with (see `curriculum.models.prompt_for`)
    tokenizer: Any

    @abstractmethod
    def generate(
        self,
        prompts: list[str],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 128,
        seed: int = 0,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> list[list[Generation]]:
        """`n` samples for each prompt, in prompt order; `temperature == 0` means greedy.

        The same prompts, settings and seed give the same samples.
        """

    @abstractmethod
    def load_adapter(self, path: str | Path | None, version: int = 0) -> None:
        """Switch the policy to the LoRA adapter at `path`, or back to the base model when None.

        `version` is the policy version the adapter publishes (vLLM names its adapters by it).
        """

    def sleep(self) -> None:  # noqa: B027 - an engine holding no accelerator memory has none to give back
        """Give the accelerator's memory back until `wake_up` (a Learner trains on the same GPU);
        `generate` may refuse meanwhile. Asleep already: nothing to do."""

    def wake_up(self) -> None:  # noqa: B027 - see `sleep`
        """Take the accelerator's memory again; then load the new policy (`load_adapter`): what was
        loaded before the sleep is not to be trusted. Awake already: nothing to do."""

    def close(self) -> None:  # noqa: B027 - optional: most engines hold nothing beyond memory
        """Release what the engine holds beyond this process's memory (vLLM: its engine process)."""

    @property
    @abstractmethod
    def adapter_path(self) -> str | None:
        """The adapter currently applied, or None for the base model."""


def validate_sampling(n: int, temperature: float, top_p: float, max_new_tokens: int) -> None:
    """Reject bad sampling settings with one line naming the argument."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")


def stop_token_ids(generation_config: Any, tokenizer: Any) -> list[int]:
    """Every token that ends a completion: the model's generation config lists the end-of-turn
    tokens of a chat model (Qwen2.5-Instruct: <|im_end|> and <|endoftext|>), the tokenizer its eos."""
    found: list[int] = []
    for ids in (getattr(generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        for token in [ids] if isinstance(ids, int) else list(ids or []):
            if token not in found:
                found.append(int(token))
    if not found:
        raise ValueError("neither the model's generation config nor the tokenizer names an end-of-sequence token")
    return found
