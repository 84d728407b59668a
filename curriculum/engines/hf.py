"""The transformers backend: batched `generate` with left padding.

Log-probs are recorded by a logits processor placed after temperature and top-p,
one (batch,) vector per step, so memory stays flat even with a large vocabulary
(`output_scores` would keep a (batch, vocab) tensor per step).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

from curriculum.engines.base import EngineAsleep, Generation, InferenceEngine, stop_token_ids, validate_sampling
from curriculum.errors import CurriculumError
from curriculum.models import load_adapter, load_model_and_tokenizer, model_context


class PromptTooLongError(CurriculumError, ValueError):
    """A prompt that does not fit the model's context with the tokens asked for."""


class _LogProbRecorder(LogitsProcessor):
    """Keeps the log-prob of each chosen token under the final (processed) distribution.

    It sees the distribution of step t and, one call later, the token chosen at step t
    (the last column of `input_ids`); `finish` collects the last step's token.
    """

    def __init__(self) -> None:
        self.previous: torch.Tensor | None = None
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.previous is not None:
            self.steps.append(self.previous.gather(1, input_ids[:, -1:]).squeeze(1))
        self.previous = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def finish(self, sequences: torch.Tensor, num_generated: int) -> torch.Tensor:
        """(batch, num_generated) log-probs of the generated tokens."""
        if num_generated == 0:
            return torch.zeros(sequences.shape[0], 0)
        assert self.previous is not None
        self.steps.append(self.previous.gather(1, sequences[:, -1:]).squeeze(1))
        return torch.stack(self.steps[-num_generated:], dim=1)


class HFEngine(InferenceEngine):
    """Generates with a transformers causal LM; LoRA adapters are merged into the weights.

    `batch_size` counts sequences (prompts x samples) per `generate` call.
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self._adapter_path: str | None = None
        self._base_state: dict[str, torch.Tensor] | None = None
        self._awake_device: torch.device | None = None  # where the weights go back to on waking (asleep)
        self.eos_token_ids = stop_token_ids(model.generation_config, tokenizer)
        self.context = model_context(model.config)  # prompt + new tokens never exceed it (None: unbounded)
        # No token spans more characters than this: far-too-long prompts are refused untokenized.
        self._longest_token = max((len(token) for token in tokenizer.get_vocab()), default=1)
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; batched generation needs one")
        # The engine's arguments alone decide sampling: no top_k/temperature from the model's folder.
        self._generation_config = GenerationConfig(
            eos_token_id=self.eos_token_ids,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
        )

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path,
        dtype: str = "auto",
        device: str | None = None,
        batch_size: int = 64,
        adapter: str | Path | None = None,
    ) -> HFEngine:

        model, tokenizer = load_model_and_tokenizer(path_or_id, dtype=dtype, device=device)
        engine = cls(model, tokenizer, batch_size=batch_size)
        if adapter is not None:
            engine.load_adapter(adapter)
        return engine

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def asleep(self) -> bool:
        return self._awake_device is not None

    # ------------------------------------------------------------------ sharing the GPU

    def sleep(self) -> None:
        """Move the weights (and the pristine base copy kept for adapters) to CPU memory."""
        if self.asleep:
            return
        self._awake_device = self.device
        self.model.to("cpu")
        if self._base_state is not None:  # it stays on CPU: `load_adapter` copies it into the weights
            self._base_state = {k: v.to("cpu") for k, v in self._base_state.items()}
        if self._awake_device.type == "cuda":
            torch.cuda.empty_cache()  # hand the freed blocks back, not only to this process's cache

    def wake_up(self) -> None:
        """Move the weights back to the device they were on."""
        if self._awake_device is None:
            return
        self.model.to(self._awake_device)
        self._awake_device = None

    @property
    def adapter_path(self) -> str | None:
        return self._adapter_path

    # ------------------------------------------------------------------ adapters

    def load_adapter(self, path: str | Path | None, version: int = 0) -> None:
        """Restore the base weights, then merge the adapter at `path` into them (None: base model)."""

        if path is None and self._base_state is None:
            return
        if self._base_state is None:  # first adapter: keep a pristine copy of the base weights
            self._base_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.model.load_state_dict(self._base_state)
        if path is not None:
            peft_model = load_adapter(self.model, path)
            self.model = peft_model.merge_and_unload().eval()
        self._adapter_path = None if path is None else str(path)

    # ------------------------------------------------------------------ generation

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
        validate_sampling(n, temperature, top_p, max_new_tokens)
        if self.asleep:
            raise EngineAsleep("the HF engine is asleep (its weights are in CPU memory): wake_up first")
        batch_size = batch_size or self.batch_size
        greedy = temperature == 0
        draws = 1 if greedy else n  # greedy samples are all the same: decode once, copy
        encoded = self._encode(prompts, max_new_tokens)
        # Rows sorted by prompt length (longest first) waste little on padding, and a
        # batch that does not fit in memory fails at once rather than at the end.
        rows = sorted(
            ((i, j) for i in range(len(prompts)) for j in range(draws)), key=lambda row: (-len(encoded[row[0]]), row)
        )
        results: dict[tuple[int, int], Generation] = {}
        batches = [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]
        iterator: Any = batches
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(batches, desc="generate", unit="batch")
        for index, batch in enumerate(iterator):
            generations = self._generate_batch(
                [encoded[i] for i, _ in batch],
                greedy,
                temperature,
                top_p,
                max_new_tokens,
                seed=seed * 1_000_003 + index,
            )
            results.update(zip(batch, generations))
        return [[results[(i, 0 if greedy else j)] for j in range(n)] for i in range(len(prompts))]

    def _encode(self, prompts: list[str], max_new_tokens: int) -> list[list[int]]:
        """Token ids of each prompt; a prompt that leaves no room for `max_new_tokens` in the model's
        context is refused (one line), never generated from: it would only fail late or exhaust memory."""
        if self.context is not None:
            if max_new_tokens >= self.context:
                raise PromptTooLongError(
                    f"max_new_tokens={max_new_tokens} leaves no room for a prompt in the "
                    f"model's context of {self.context} tokens"
                )
            room = self.context - max_new_tokens
            for index, prompt in enumerate(prompts):
                if len(prompt) > room * self._longest_token:
                    raise PromptTooLongError(
                        f"prompt {index} is {len(prompt):,} characters, over the {room} "
                        f"tokens the model's context of {self.context} leaves beside "
                        f"max_new_tokens={max_new_tokens}"
                    )
        encoded = self.tokenizer(list(prompts))["input_ids"]
        if self.context is not None:
            for index, ids in enumerate(encoded):
                if len(ids) + max_new_tokens > self.context:
                    raise PromptTooLongError(
                        f"prompt {index} is {len(ids):,} tokens: with max_new_tokens="
                        f"{max_new_tokens} it exceeds the model's context of {self.context}"
                    )
        return encoded

    @torch.inference_mode()
    def _generate_batch(
        self, input_ids: list[list[int]], greedy: bool, temperature: float, top_p: float, max_new_tokens: int, seed: int
    ) -> list[Generation]:
        padded = self.tokenizer.pad({"input_ids": input_ids}, padding=True, return_tensors="pt")
        padded = {k: v.to(self.device) for k, v in padded.items()}
        prompt_length = padded["input_ids"].shape[1]

        recorder = _LogProbRecorder()
        processors: list[LogitsProcessor] = []
        if not greedy:
            if temperature != 1.0:
                processors.append(TemperatureLogitsWarper(temperature))
            if top_p < 1.0:
                processors.append(TopPLogitsWarper(top_p))
        processors.append(recorder)

        generation_config = copy.deepcopy(self._generation_config)
        generation_config.update(do_sample=not greedy, max_new_tokens=max_new_tokens, return_dict_in_generate=True)
        if not greedy:
            generation_config.update(top_k=0)  # the global default would be top_k=50
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # seeded without disturbing the caller's RNG
            torch.manual_seed(seed)
            output = self.model.generate(
                **padded, generation_config=generation_config, logits_processor=LogitsProcessorList(processors)
            )
        sequences = output.sequences
        generated = sequences[:, prompt_length:]
        token_logprobs = recorder.finish(sequences, generated.shape[1])

        generations = []
        eos = torch.tensor(self.eos_token_ids, device=generated.device)
        for row in range(generated.shape[0]):
            tokens = generated[row]
            stops = torch.isin(tokens, eos).nonzero()
            finished = len(stops) > 0
            length = int(stops[0]) + 1 if finished else int(tokens.shape[0])
            text = self.tokenizer.decode(tokens[:length], skip_special_tokens=True)
            logprobs = token_logprobs[row, :length]
            generations.append(
                Generation(
                    text=text,
                    num_tokens=length,
                    logprob=float(logprobs.sum()),
                    finished=finished,
                    token_ids=tuple(tokens[:length].tolist()),
                    token_logprobs=tuple(logprobs.tolist()),
                )
            )
        return generations
