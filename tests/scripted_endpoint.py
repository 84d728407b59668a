"""A scripted OpenAI-compatible chat endpoint on 127.0.0.1 for runs of the LLM-Teacher recipes
without a model server (socratic_zero_gsm8k.yaml, sws_math.yaml): it answers each of the
Teacher's prompts (configs/prompts/) with a well-formed reply of that step, as a served model
would, so the run's own clients, workflows, admission and labelling are what is tested.

Problems it writes are "Sam has A marbles and finds B more. ..." with fresh numbers each time;
the labeller answers them with \\boxed{A+B} (all samples agree), anything else with \\boxed{0}.

    with ScriptedEndpoint() as endpoint:
        ... teacher.endpoint.base_url=endpoint.base_url teacher.endpoint.model=scripted ...
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "scripted"
QUESTION = re.compile(r"Sam has (\d+) marbles and finds (\d+) more")


class ScriptedEndpoint:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self._numbers = itertools.count(11)
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._send({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "test"}]})

            def do_POST(self) -> None:  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = request["messages"][-1]["content"]
                replies = [endpoint.reply(prompt) for _ in range(int(request.get("n") or 1))]
                self._send(
                    {
                        "id": "scripted",
                        "object": "chat.completion",
                        "created": 0,
                        "model": MODEL,
                        "choices": [
                            {"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                            for i, text in enumerate(replies)
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _question(self) -> str:
        with self._lock:
            a = next(self._numbers)
        return f"Sam has {a} marbles and finds {a + 7} more. How many marbles does Sam have now?"

    def reply(self, prompt: str) -> str:
        """What a served model would answer to each step's prompt (see configs/prompts/)."""
        if "List the mathematical concepts" in prompt:
            step, text = "concepts", json.dumps({"concepts": ["addition", "word problems"]})
        elif "new problem(s), in this order" in prompt:
            count = int(re.search(r"Write (\d+) new problem", prompt).group(1))
            step = "write"
            text = json.dumps(
                {"problems": [{"question": self._question(), "rationale": "one more addition"} for _ in range(count)]}
            )
        elif '"error"' in prompt:
            step, text = (
                "diagnose",
                json.dumps({"error": "the attempts never state a final answer", "concept": "addition"}),
            )
        elif "must combine these concepts" in prompt:
            step, text = "question", json.dumps({"question": self._question(), "rationale": "combines them"})
        else:
            found = QUESTION.search(prompt)
            step = "label"
            text = f"Adding them up: \\boxed{{{int(found.group(1)) + int(found.group(2)) if found else 0}}}."
        with self._lock:
            self.calls[step] = self.calls.get(step, 0) + 1
        return text

    def __enter__(self) -> ScriptedEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
