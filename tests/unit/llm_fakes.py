"""Scripted chat models for the LLM Teacher's tests: langchain_core's FakeListChatModel, whose
replies may also be errors an OpenAI endpoint raises ("!connection", "!timeout", "!500", "!length"),
and a labeller that answers by the question it is asked."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import openai
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from pydantic import PrivateAttr

from curriculum.config import Config, from_dict
from curriculum.roles.teacher.endpoint import Endpoint
from curriculum.roles.teacher.llm import Connection, LLMTeacher, load_prompts
from curriculum.roles.teacher.workflow import verifier_equivalence

REQUEST = httpx.Request("POST", "http://fake/v1/chat/completions")


def error_for(reply: str) -> Exception | None:
    if reply == "!connection":
        return openai.APIConnectionError(request=REQUEST)
    if reply == "!timeout":
        return openai.APITimeoutError(request=REQUEST)
    if reply == "!500":
        return openai.InternalServerError("boom", response=httpx.Response(500, request=REQUEST), body=None)
    if reply == "!length":
        from openai.types.chat import ChatCompletion

        completion = ChatCompletion.model_validate(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "fake",
                "choices": [
                    {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": '{"err'}}
                ],
            }
        )
        return openai.LengthFinishReasonError(completion=completion)
    return None


class Scripted(FakeListChatModel):
    """Replies in order (cycling); a reply naming an error raises it. Thread-safe; counts its calls."""

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: int = PrivateAttr(default=0)

    def _call(self, *args: Any, **kwargs: Any) -> str:
        with self._lock:
            self._calls += 1
            reply = super()._call(*args, **kwargs)
        error = error_for(reply)
        if error is not None:
            raise error
        return reply

    @property
    def calls(self) -> int:
        return self._calls


class ByQuestion(FakeListChatModel):
    """The labeller: for the first key of `answers` found in the prompt, its replies in turn (per key);
    a question it does not know gets `responses` (cycling)."""

    answers: dict[str, list[str]]
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _turns: dict[str, int] = PrivateAttr(default_factory=dict)

    def _call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        prompt = messages[-1].content
        with self._lock:
            for key, replies in self.answers.items():
                if key in prompt:
                    turn = self._turns.get(key, 0)
                    self._turns[key] = turn + 1
                    reply = replies[turn % len(replies)]
                    break
            else:
                reply = super()._call(messages, *args, **kwargs)
        error = error_for(reply)
        if error is not None:
            raise error
        return reply


class ByStep(FakeListChatModel):
    """The writer: replies by the step its prompt is for (concepts or question) and the problem in it."""

    concepts: dict[str, str] = {}  # a question of a weak problem -> the concepts reply (default: `responses`)
    questions: list[str]  # the question replies, in turn
    _turn: int = PrivateAttr(default=0)

    def _call(self, messages, *args, **kwargs):
        prompt = messages[-1].content
        if "List the mathematical concepts" in prompt:
            return next((reply for question, reply in self.concepts.items() if question in prompt), self.responses[0])
        reply = self.questions[self._turn % len(self.questions)]
        self._turn += 1
        return reply


def boxed(*answers: str) -> list[str]:
    return [f"Step by step... so the answer is \\boxed{{{a}}}." for a in answers]


def llm_config(**teacher: Any) -> Config:
    return from_dict(
        {
            "teacher": {
                "kind": "llm",
                "variants_per_failure": 2,
                "max_failures": 8,
                "endpoint": {
                    "base_url": "http://fake/v1",
                    "model": "fake",
                    "max_attempts": 3,
                    "retry_backoff_s": 0,
                    "max_concurrency": 1,
                    **teacher.pop("endpoint", {}),
                },
                "labels": {"samples": 8, "min_agreement": 4, **teacher.pop("labels", {})},
                **teacher,
            },
            "world": {"families": ["add"], "max_level": 3, "heldout_per_level": 2, "seed_set_size": 4},
            "solver": {"attempts": 4},
            "loop": {"problems_per_round": 4},
        }
    )


def llm_teacher(config: Config, writer: Any, labeller: Any, verifier: Any, synthesis: bool = False) -> LLMTeacher:
    """An LLMTeacher over scripted models (no server: nothing to probe)."""
    endpoint = config.teacher.endpoint
    connection = Connection(
        Endpoint(writer, "fake-writer @ test", endpoint), Endpoint(labeller, "fake-labeller @ test", endpoint)
    )
    synthesis_prompts = None
    if synthesis:
        from curriculum.roles.teacher.llm_synthesis import load_prompts as load_synthesis

        synthesis_prompts = load_synthesis(config)
    return LLMTeacher(
        config,
        load_prompts(config),
        lambda: connection,
        verifier_equivalence(verifier),
        synthesis_prompts=synthesis_prompts,
    )
