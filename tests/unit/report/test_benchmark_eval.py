"""`curriculum eval` pieces without a model: scoring, prompts, target and dataset resolution."""

import json

import pytest

from curriculum.cli import main
from curriculum.config import from_dict
from curriculum.engines.base import Generation, InferenceEngine
from curriculum.models import build_char_tokenizer
from curriculum.records import Problem
from curriculum.report.benchmark import (
    EvalError,
    default_output,
    evaluate_benchmark,
    mlflow_metrics,
    report,
    resolve_dataset,
    resolve_target,
)
from curriculum.verify import Verifier

CHAT = "{% for m in messages %}<user>{{ m['content'] }}</user>{% endfor %}<assistant>"


class CyclingEngine(InferenceEngine):
    """Sample j of a prompt is replies[prompt][j]; records the prompts it saw."""

    def __init__(self, replies, chat=False):
        self.tokenizer = build_char_tokenizer()
        if chat:
            self.tokenizer.chat_template = CHAT
        self.replies = replies
        self.prompts = []
        self.temperature = None

    def generate(
        self, prompts, n=1, temperature=1.0, top_p=1.0, max_new_tokens=128, seed=0, batch_size=None, progress=False
    ):
        self.prompts += prompts
        self.temperature = temperature
        return [
            [
                Generation(text, len(text), -1.0)
                for text in self.replies[p.removeprefix("<user>").split("?")[0] + "?"][:n]
            ]
            for p in prompts
        ]

    def load_adapter(self, path):
        raise NotImplementedError

    @property
    def adapter_path(self):
        return None


def q(text, answer, subject, level):
    return Problem(question=text, answer=answer, source="dataset", concepts=[subject], level=level)


PROBLEMS = [q("1+1?", "2", "Algebra", 1), q("2+2?", "4", "Algebra", 2), q("3+3?", "6", "Geometry", 2)]
REPLIES = {  # correct samples: 2 of 4, 0 of 4, 4 of 4
    "1+1?": [r"\boxed{2}", "3", r"\boxed{2}", "1"],
    "2+2?": ["5", "5", "3", r"\boxed{5}"],
    "3+3?": ["6"] * 4,
}


@pytest.fixture(scope="module")
def verifier():
    with Verifier() as v:
        yield v


def test_pass_at_k_and_breakdowns(verifier):
    engine = CyclingEngine(REPLIES, chat=True)
    result = evaluate_benchmark(
        engine,
        PROBLEMS,
        verifier,
        "auto",
        samples=4,
        temperature=0.7,
        top_p=1.0,
        max_new_tokens=8,
        instruction=" Box it.",
    )
    assert [item.correct for item in result.items] == [2, 0, 4]
    scores = result.scores([1, 2])
    assert scores["pass@1"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert scores["pass@2"] == pytest.approx(((1 - 1 / 6) + 0 + 1) / 3)  # 1 - C(2,2)/C(4,2) for the first
    assert scores["mean_tokens"] == pytest.approx(sum(len(t) for r in REPLIES.values() for t in r) / 12)
    assert result.breakdown([1], "subject") == {
        "Algebra": {"problems": 2, "pass@1": 0.25, "mean_tokens": 4.0},
        "Geometry": {"problems": 1, "pass@1": 1.0, "mean_tokens": 1.0},
    }
    assert set(result.breakdown([1], "level")) == {"1", "2"}
    # The chat template wraps question + instruction as one user turn.
    assert engine.prompts[0] == "<user>1+1? Box it.</user><assistant>"


def test_plain_prompt_without_chat_template_and_report_shape(verifier):
    engine = CyclingEngine(REPLIES)
    result = evaluate_benchmark(
        engine, PROBLEMS[:1], verifier, "auto", samples=1, temperature=0.0, top_p=1.0, max_new_tokens=8
    )
    assert engine.prompts == ["1+1?\n"] and engine.temperature == 0.0
    target = resolve_target("some/base")
    summary = report(result, 1, target, "mini", "mini.jsonl", {"samples": 1}, 0.5)
    assert summary["pass@1"] == 1.0 and summary["dataset"] == {"name": "mini", "source": "mini.jsonl", "rows": 1}
    assert summary["items"][0]["extracted"] == ["2"]
    assert mlflow_metrics(summary, "mini", 1) == {
        "bench/mini/pass_at_1": 1.0,
        "bench/mini/mean_tokens": summary["mean_tokens"],
    }
    json.dumps(summary)  # JSON-ready


def fake_run(tmp_path, versions=(1, 2), latest=2):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("experiment: {name: x}\n")
    (run / "results.json").write_text(json.dumps({"base_model": "/models/base"}))
    for v in versions:
        (run / "checkpoints" / f"policy_v{v:04d}").mkdir()
        (run / "checkpoints" / f"policy_v{v:04d}" / "adapter_config.json").write_text("{}")
    if latest is not None:
        (run / "checkpoints" / "LATEST.json").write_text(json.dumps({"round": latest, "policy_version": latest}))
    return run


def test_targets_run_versions_adapters_and_bases(tmp_path):
    run = fake_run(tmp_path)
    target = resolve_target(str(run))
    assert (target.base, target.policy_version, target.adapter) == (
        "/models/base",
        2,
        str(run / "checkpoints" / "policy_v0002"),
    )
    assert resolve_target(str(run), policy_version=1).adapter.endswith("policy_v0001")
    assert resolve_target(str(run), policy_version=0).adapter is None
    assert default_output(resolve_target(str(run)), "gsm8k", 4, None, "runs") == run / "eval/v0002/gsm8k-pass4.json"
    with pytest.raises(EvalError, match="no policy version 7"):
        resolve_target(str(run), policy_version=7)
    # No LATEST.json (a run still in round 1): the newest published folder.
    assert resolve_target(str(fake_run(tmp_path / "b", versions=(1,), latest=None))).policy_version == 1

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/models/other"}))
    assert resolve_target(str(adapter)) == resolve_target(str(adapter), base="/models/other")
    assert resolve_target(str(adapter)).base == "/models/other"
    assert resolve_target("Qwen/Qwen3-0.6B").adapter is None
    with pytest.raises(EvalError, match="needs a run directory"):
        resolve_target("Qwen/Qwen3-0.6B", policy_version=1)


def test_datasets_by_name_or_file_with_a_field_mapping(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text(json.dumps({"q": "1+1?", "sol": "so #### 2", "topic": "arith"}) + "\n")
    config = from_dict(
        {
            "data_root": str(tmp_path),
            "datasets": {
                "named": {"path": "mine.jsonl", "question_field": "q", "answer_field": "sol", "extraction": "gsm8k"}
            },
        }
    )
    name, spec = resolve_dataset(config, "named")
    assert (name, spec.question_field, spec.extraction) == ("named", "q", "gsm8k")
    name, spec = resolve_dataset(
        config,
        str(data),
        {"question_field": "q", "answer_field": "sol", "extraction": "gsm8k", "subject_field": "topic", "split": None},
    )
    assert (name, spec.path, spec.subject_field, spec.split) == ("mine", str(data), "topic", "test")
    with pytest.raises(EvalError, match="neither a dataset in the config .known: named. nor an existing file"):
        resolve_dataset(config, "nope")
    with pytest.raises(EvalError, match="extraction"):
        resolve_dataset(config, "named", {"extraction": "bogus"})


def test_cli_usage_errors_are_one_line_exit_2(tmp_path, capsys):
    assert main(["eval", "Qwen/Qwen3-0.6B", "--dataset", "gsm8k", "--policy-version", "1"]) == 2
    assert main(["eval", str(fake_run(tmp_path)), "--dataset", "gsm8k", "--k", "4", "--samples", "2"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "needs a run directory" in errors[0] and "--k 4 needs at least k samples" in errors[1]
