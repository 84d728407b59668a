"""An OpenAI-compatible chat endpoint as the LLM workflows use it (langchain-openai `ChatOpenAI`).

What this adds to a chat model: at most `max_concurrency` calls in flight, every call bounded in
time (`timeout_s`, no client-side retries: the workflow's RetryPolicy retries), the JSON schema
asked for as the OpenAI `response_format`, a length cut turned into `TruncatedOutput`, and the
reply as plain text with its token counts. The API key is read from the environment variable
`api_key_env` names, when the model is built, and is never stored or logged.

Only OpenAI API fields are sent (messages, temperature, top_p, max tokens, seed,
response_format), so any OpenAI-compatible server or API answers; one that refuses the JSON-schema
response_format (HTTP 400 naming it) is asked with json_object, then with none. What a vLLM server
needs (`disable_any_whitespace` for compact JSON) is a server flag, set by `agents/serve.py`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from curriculum.config.teacher import EndpointConfig, StructuredOutput
from curriculum.errors import CurriculumError

log = logging.getLogger(__name__)
NO_KEY = "EMPTY"  # what a local server without --api-key accepts (the client refuses an empty key)


class EndpointError(CurriculumError):
    """An endpoint that cannot be used at all (down, refusing the key); one line naming it."""


class TruncatedOutput(Exception):
    """The reply was cut at max_tokens (finish_reason "length"); `text` is what came back."""

    def __init__(self, text: str):
        super().__init__(f"the reply was cut at max_tokens after {len(text)} characters")
        self.text = text


@dataclass
class Reply:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float


def api_key(config: EndpointConfig, what: str = "teacher.endpoint") -> str:
    """The key from the environment variable `api_key_env` names; NO_KEY when none is named (a local
    server wants no key, but the OpenAI client refuses to send none)."""
    if config.api_key_env is None:
        return NO_KEY
    key = os.environ.get(config.api_key_env)
    if not key:
        raise EndpointError(
            f"{what}.api_key_env names {config.api_key_env}, which is not set in the environment "
            "of the Teacher's process (export it before `curriculum run`)"
        )
    return key


def chat_model(
    config: EndpointConfig,
    base_url: str,
    model: str,
    temperature: float,
    max_tokens: int,
    key: str | None = None,
    what: str = "teacher.endpoint",
) -> Any:
    """A `ChatOpenAI` for `model` at `base_url` with these sampling settings."""
    from langchain_openai import ChatOpenAI

    extra: dict[str, Any] = {}
    if is_loopback(base_url):  # a proxy from the environment must not carry calls to this machine
        import httpx

        extra["http_client"] = httpx.Client(trust_env=False, timeout=config.timeout_s)
    return ChatOpenAI(
        base_url=base_url,
        model=model,
        api_key=key or api_key(config, what),
        temperature=temperature,
        top_p=config.top_p,
        max_tokens=max_tokens,
        timeout=config.timeout_s,
        max_retries=0,
        **extra,
    )


def is_loopback(url: str | None) -> bool:
    from urllib.parse import urlparse

    return bool(url) and urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")


class Endpoint:
    """A chat model with a bound on calls in flight. `name` (model @ url) is what audits and errors show."""

    def __init__(
        self,
        model: Any,
        name: str,
        config: EndpointConfig,
        base_url: str | None = None,
        key: str | None = None,
        slots: threading.BoundedSemaphore | None = None,
    ):
        self.model = model
        self.name = name
        self.config = config
        self.base_url = base_url
        self._key = key
        # Two Endpoints of one server (the Teacher's and the labeller's sampling) share one bound.
        self._slots = slots or threading.BoundedSemaphore(config.max_concurrency)
        self.structured_output = config.structured_output  # lowered once if the endpoint refuses it

    def with_model(self, model: Any) -> Endpoint:
        """The same server and bound on calls in flight, another chat model (other sampling settings)."""
        return Endpoint(model, self.name, self.config, self.base_url, self._key, self._slots)

    def response_format(self, name: str, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None or self.structured_output == "none":
            return None
        if self.structured_output == "json_object":
            return {"type": "json_object"}
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}

    def complete(
        self,
        messages: list[tuple[str, str]],
        seed: int | None = None,
        schema_name: str = "reply",
        schema: dict[str, Any] | None = None,
    ) -> Reply:
        """One call: the reply's text. Raises the client's errors (connection, timeout, 5xx, 4xx)
        and `TruncatedOutput`."""
        from openai import BadRequestError, LengthFinishReasonError

        while True:
            kwargs: dict[str, Any] = {} if seed is None else {"seed": seed}
            response_format = self.response_format(schema_name, schema)
            if response_format is not None:
                kwargs["response_format"] = response_format
            with self._slots:
                start = time.perf_counter()
                try:
                    message = self.model.invoke(messages, **kwargs)
                except LengthFinishReasonError as exc:
                    choice = exc.completion.choices[0] if exc.completion.choices else None
                    raise TruncatedOutput((choice.message.content or "") if choice else "") from None
                except BadRequestError as exc:
                    if response_format is None or "response_format" not in str(exc) or not self._lower_format():
                        raise
                    continue  # asked again with a plainer response_format (the tolerant parser reads either)
                latency = time.perf_counter() - start
            break
        text = message.text if isinstance(getattr(message, "text", None), str) else str(message.content)
        if (getattr(message, "response_metadata", None) or {}).get("finish_reason") == "length":
            raise TruncatedOutput(text)
        usage = getattr(message, "usage_metadata", None) or {}
        return Reply(text, usage.get("input_tokens"), usage.get("output_tokens"), latency)

    def _lower_format(self) -> bool:
        """An endpoint that refuses the response_format asked for gets a plainer one from now on:
        json_schema -> json_object -> none (an OpenAI-compatible server need not support all)."""
        lowered: dict[str, StructuredOutput] = {"json_schema": "json_object", "json_object": "none"}
        lower = lowered.get(self.structured_output)
        if lower is None:
            return False
        log.warning(
            "%s refused response_format %s; asking with %s from now on", self.name, self.structured_output, lower
        )
        self.structured_output = lower
        return True

    def probe(self) -> None:
        """Raise `EndpointError` (one line naming the endpoint) unless it answers `GET /models`."""
        if self.base_url is None:  # a chat model without a server (tests)
            return
        import httpx

        headers = {"Authorization": f"Bearer {self._key}"} if self._key and self._key != NO_KEY else {}
        url = self.base_url.rstrip("/") + "/models"
        try:
            response = httpx.get(
                url, headers=headers, timeout=min(10.0, self.config.timeout_s), trust_env=not is_loopback(url)
            )
        except httpx.HTTPError as exc:
            raise EndpointError(
                f"the Teacher's endpoint {self.name} is not reachable ({type(exc).__name__}: "
                f"{_first_line(exc)}); start it or fix teacher.endpoint.base_url, then "
                "`curriculum resume RUN_DIR` retries the stage"
            ) from None
        if response.status_code in (401, 403):
            raise EndpointError(
                f"the Teacher's endpoint {self.name} refused the API key (HTTP "
                f"{response.status_code}); check the variable teacher.endpoint.api_key_env names"
            )
        if response.status_code >= 500:
            raise EndpointError(
                f"the Teacher's endpoint {self.name} answers HTTP {response.status_code} on /models; "
                "`curriculum resume RUN_DIR` retries the stage once it is back"
            )


def endpoint_name(model: str | None, base_url: str | None) -> str:
    return f"{model or '?'} @ {base_url or 'in-process'}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
