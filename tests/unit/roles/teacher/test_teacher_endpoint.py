"""The LLM Teacher against an OpenAI-compatible HTTP server on loopback (a stdlib fake of the OpenAI
chat API): what goes over the wire, retries of 5xx, a dead endpoint in one line, the API key kept
out of the audit and of MLflow, and MLflow traces of the workflow linked to the run."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from llm_fakes import llm_config

from curriculum.records import Attempt, Problem
from curriculum.roles.teacher.base import Failure
from curriculum.roles.teacher.endpoint import EndpointError
from curriculum.roles.teacher.llm import LLMTeacher, connector, load_prompts
from curriculum.roles.teacher.workflow import verifier_equivalence
from curriculum.verify import Verifier

SECRET = "sk-test-0123456789abcdef-do-not-leak"
PARENT = Problem(question="What is 17 + 25?", answer="42", source="seed", family="add", level=2)
FAILURE = Failure(
    PARENT,
    tuple(
        Attempt(
            problem_id=PARENT.id,
            policy_version=0,
            sample_index=i,
            round=1,
            completion="answer: 32",
            extracted_answer="32",
            correct=i == 0,
            reward=0.0,
            num_tokens=5,
        )
        for i in range(4)
    ),
)


class FakeOpenAI(BaseHTTPRequestHandler):
    """POST /v1/chat/completions answers by the schema asked for; the first `fail_first` calls get a 500."""

    requests: list = []
    fail_first = 0
    refuse_schema = False  # answer a JSON-schema response_format with 400, as some servers do
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            FakeOpenAI.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            fail = len(FakeOpenAI.requests) <= FakeOpenAI.fail_first
        if fail:
            return self._send(500, {"error": {"message": "overloaded", "type": "server_error"}})
        if FakeOpenAI.refuse_schema and (body.get("response_format") or {}).get("type") == "json_schema":
            return self._send(
                400,
                {
                    "error": {
                        "message": "response_format of type json_schema is not supported",
                        "type": "invalid_request_error",
                    }
                },
            )
        if (body.get("response_format") or {}).get("type") == "json_object":  # which step: from the prompt
            body["response_format"]["json_schema"] = {
                "name": "write" if "new problem(s)" in json.dumps(body) else "diagnose"
            }
        name = (body.get("response_format") or {}).get("json_schema", {}).get("name")
        content = {
            "diagnose": json.dumps({"error": "no carry", "concept": "addition"}),
            "write": json.dumps(
                {
                    "problems": [
                        {"question": "What is 38 + 47?", "rationale": "carry"},
                        {"question": "What is 29 + 56?", "rationale": "carry"},
                    ]
                }
            ),
        }.get(name, "38 + 47 = 85, so \\boxed{85}.")
        self._send(
            200,
            {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                ],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
            },
        )


@pytest.fixture
def server():
    FakeOpenAI.requests, FakeOpenAI.fail_first, FakeOpenAI.refuse_schema = [], 0, False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def teacher_for(base_url: str, verifier, tracing=None, **endpoint) -> LLMTeacher:
    config = llm_config(
        endpoint={
            "base_url": base_url,
            "model": "fake-model",
            "api_key_env": "TEST_TEACHER_KEY",
            "max_concurrency": 4,
            **endpoint,
        },
        variants_per_failure=2,
    )
    return LLMTeacher(config, load_prompts(config), connector(config), verifier_equivalence(verifier), tracing=tracing)


def test_requests_follow_the_openai_api_and_the_key_stays_secret(server, verifier_and_mlflow, monkeypatch):
    verifier, tracing, db = verifier_and_mlflow
    monkeypatch.setenv("TEST_TEACHER_KEY", SECRET)
    FakeOpenAI.fail_first = 1  # a 5xx is retried
    result = teacher_for(server, verifier, tracing).teach([FAILURE], [], round=3)

    assert sorted(p.question for p in result.problems) == ["What is 29 + 56?", "What is 38 + 47?"]
    assert all(p.answer == "85" and p.vote_share == 1.0 for p in result.problems)  # the fake solves one sum only
    paths = {path for path, _, _ in FakeOpenAI.requests}
    assert paths == {"/v1/chat/completions"}
    headers = [h for _, h, _ in FakeOpenAI.requests]
    assert all(h["authorization"] == f"Bearer {SECRET}" for h in headers)
    bodies = [b for _, _, b in FakeOpenAI.requests]
    diagnose = next(
        b for b in bodies if (b.get("response_format") or {}).get("json_schema", {}).get("name") == "diagnose"
    )
    assert diagnose["response_format"]["type"] == "json_schema"
    assert diagnose["response_format"]["json_schema"]["schema"]["required"] == ["error", "concept"]
    assert diagnose["model"] == "fake-model" and isinstance(diagnose["seed"], int) and diagnose["temperature"] == 0.7
    assert [m["role"] for m in diagnose["messages"]] == ["system", "user"]
    labels = [b for b in bodies if "response_format" not in b]
    assert len(labels) == 16 and len({b["seed"] for b in labels}) == 16  # 8 seeded samples per draft
    assert result.calls[0].error.startswith("endpoint_error") and sum(bool(c.error) for c in result.calls) == 1
    assert all(c.prompt_tokens == 11 and c.completion_tokens == 7 for c in result.calls if not c.error)

    audit = json.dumps([c.model_dump(mode="json") for c in result.calls])
    assert SECRET not in audit and server.split("/v1")[0] in result.calls[0].endpoint
    import mlflow

    traces = mlflow.search_traces(locations=[tracing.target.experiment_id], return_type="list")
    assert traces and all(t.info.request_metadata.get("mlflow.sourceRun") == tracing.target.run_id for t in traces)
    assert {t.info.tags.get("curriculum.stage") for t in traces} == {"teach"}
    spans = {span.name for t in traces for span in t.data.spans}
    assert {"diagnose", "write", "label", "ChatOpenAI"} <= spans
    assert SECRET.encode() not in db.read_bytes()


def test_an_endpoint_without_json_schema_output_is_asked_with_json_object(server, verifier_and_mlflow):
    FakeOpenAI.refuse_schema = True
    result = teacher_for(server, verifier_and_mlflow[0], api_key_env=None).teach([FAILURE], [], round=1)
    assert len(result.problems) == 2 and not any(c.error for c in result.calls)
    formats = [(b.get("response_format") or {}).get("type") for _, _, b in FakeOpenAI.requests]
    assert formats[:3] == ["json_schema", "json_object", "json_object"]  # refused once, then lowered for good


def test_a_dead_endpoint_fails_the_stage_in_one_line_naming_it(verifier_and_mlflow):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(EndpointError) as caught:
        teacher_for(f"http://127.0.0.1:{port}/v1", verifier_and_mlflow[0], api_key_env=None).teach([FAILURE], [], 1)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "not reachable" in message and "\n" not in message


def test_a_missing_key_variable_is_named(server, verifier_and_mlflow, monkeypatch):
    monkeypatch.delenv("TEST_TEACHER_KEY", raising=False)
    with pytest.raises(EndpointError, match="TEST_TEACHER_KEY, which is not set"):
        teacher_for(server, verifier_and_mlflow[0]).teach([FAILURE], [], 1)


@pytest.fixture(scope="module")
def verifier_and_mlflow(tmp_path_factory):
    from mlflow.tracking import MlflowClient

    from curriculum.roles.teacher.tracing import TraceTarget, langchain_tracing

    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    uri = f"sqlite:///{db}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("teacher-test")
    run = client.create_run(experiment, run_name="r").info.run_id
    target = TraceTarget(uri, experiment, run)
    scope = langchain_tracing(target)
    scope.target = target
    with Verifier() as verifier:
        yield verifier, scope, db
