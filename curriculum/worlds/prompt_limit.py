"""Problems whose prompt would not fit the model, found when their data is read.

A prompt (the question + the world's instruction, through the chat template) and the tokens the
model may then generate must fit its context; `model.max_prompt_tokens` may ask for less. One
line of a data file that holds a megabyte-long question must be refused (or skipped, when the
user asks) with its file and line, not hang generation or run the machine out of memory.

Counting tokens costs a tokenizer pass over the text, so a question is first bounded below
without tokenizing: no token covers more characters than the longest one in the vocabulary,
so a question of `n` characters needs at least `n / longest` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curriculum.models import prompt_for


@dataclass(frozen=True)
class PromptLimit:
    """The most tokens a problem's prompt may have, and why (`describe`)."""

    tokenizer: Any
    max_prompt_tokens: int
    reason: str  # e.g. "the model's context of 4096 tokens less 192 new tokens"
    instruction: str = ""
    skip_hint: str = ""  # how the user asks for such problems to be skipped instead
    _longest_token: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_prompt_tokens < 1:
            raise ValueError(f"no room for a prompt: {self.reason}")
        longest = max((len(token) for token in self.tokenizer.get_vocab()), default=1)
        object.__setattr__(self, "_longest_token", max(1, longest))

    @classmethod
    def for_model(
        cls,
        tokenizer: Any,
        context: int | None,
        max_new_tokens: int,
        instruction: str = "",
        max_prompt_tokens: int | None = None,
        skip_hint: str = "",
    ) -> PromptLimit | None:
        """The limit of a model with `context` tokens (None: unknown) generating up to
        `max_new_tokens`, or `max_prompt_tokens` if lower; None when neither bounds prompts."""
        limits = []
        if context is not None:
            limits.append(
                (context - max_new_tokens, f"the model's context of {context} tokens less {max_new_tokens} new tokens")
            )
        if max_prompt_tokens is not None:
            limits.append((max_prompt_tokens, f"model.max_prompt_tokens={max_prompt_tokens}"))
        if not limits:
            return None
        tokens, reason = min(limits)
        return cls(tokenizer, tokens, reason, instruction, skip_hint)

    def key(self) -> tuple[object, ...]:
        """What makes two limits the same (the tokenizer is the model's: `reason` names its context)."""
        return (self.max_prompt_tokens, self.reason, self.instruction, self.skip_hint)

    def excess(self, question: str) -> str | None:
        """None if the question's prompt fits; otherwise how far over it is (one phrase)."""

        at_least = len(question) // self._longest_token
        if at_least > self.max_prompt_tokens:  # far too long: not worth tokenizing
            return (
                f"the question is {len(question):,} characters, at least {at_least:,} tokens, over the "
                f"{self.max_prompt_tokens:,} a prompt may have ({self.reason})"
            )
        tokens = len(self.tokenizer(prompt_for(question, self.tokenizer, self.instruction))["input_ids"])
        if tokens > self.max_prompt_tokens:
            return f"the prompt is {tokens:,} tokens, over the {self.max_prompt_tokens:,} allowed ({self.reason})"
        return None
