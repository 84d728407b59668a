"""One answer format end to end: the loop's held-out evaluation and `curriculum eval` ask for the
world's format and read a model's answer by the world's one rule, so their verdicts agree item by
item; other rules are reported beside it, labelled."""

import json
from pathlib import Path

import pytest

from curriculum.config import BOXED_INSTRUCTION, load_config
from curriculum.engines.base import Generation, InferenceEngine
from curriculum.models import load_tokenizer
from curriculum.report.benchmark import ModelTarget, run_eval
from curriculum.roles.solver import Solver
from curriculum.verify import Verifier
from curriculum.worlds import make_world

ROOT = Path(__file__).resolve().parents[3]

# Completion formats, in turn over the problems; {a} is the reference answer.
FORMATS = [
    ("boxed", "Adding up, we get \\boxed{{{a}}}."),
    ("gsm8k", "Adding up gives {a}.\n#### {a}"),
    ("answer_colon", "We add them.\nanswer: {a}"),
    ("last_number", "We add them and get {a}"),
    ("boxed_wrong", "So it is \\boxed{{{a}1}}."),
    ("boxed_after_gsm8k", "#### {a}\nOn second thought \\boxed{{0}}"),
]
READ_BY_BOXED = {"boxed": True}  # every other format is wrong by the boxed rule
READ_BY_AUTO = {"boxed": True, "gsm8k": True, "answer_colon": True, "last_number": True}


class ScriptedEngine(InferenceEngine):
    """Answers the problem whose question is in the prompt with its scripted completion; records prompts."""

    def __init__(self, tokenizer, completions: dict[str, str]):
        self.tokenizer = tokenizer
        self.completions = completions
        self.prompts: list[str] = []

    def generate(
        self, prompts, n=1, temperature=1.0, top_p=1.0, max_new_tokens=128, seed=0, batch_size=None, progress=False
    ):
        self.prompts += prompts
        out = []
        for prompt in prompts:
            [text] = [c for question, c in self.completions.items() if question in prompt]
            out.append([Generation(text, len(text), -1.0)] * n)
        return out

    def load_adapter(self, path, version=0):
        raise NotImplementedError

    @property
    def adapter_path(self):
        return None


@pytest.fixture
def mixed(tmp_path, random_qwen):
    """A GSM8K-style file, the gsm8k_qwen recipe's dataset world on it, and scripted completions."""
    rows = [
        {
            "question": f"Tom has {n} apples and buys {n + 3} more. How many apples does he have now?",
            "answer": f"He has {n} + {n + 3} = <<{n}+{n + 3}={2 * n + 3}>>{2 * n + 3} apples.\n#### {2 * n + 3}",
        }
        for n in range(1, 13)
    ]
    data = tmp_path / "mixed.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = load_config(
        ROOT / "configs/gsm8k_qwen.yaml",
        [
            f"model.path={random_qwen}",
            f"experiment.runs_dir={tmp_path / 'runs'}",
            f"datasets.mixed.path={data}",
            "datasets.mixed.split=test",
            "datasets.mixed.extraction=gsm8k",
            "world.seed_sets=[mixed]",
            "world.heldout_sets=[mixed]",
            "world.heldout_size={}",
            "solver.engine=hf",
        ],
    )
    world = make_world(config)
    problems = world.heldout()
    formats = {p.id: FORMATS[i % len(FORMATS)][0] for i, p in enumerate(problems)}
    completions = {p.question: FORMATS[i % len(FORMATS)][1].format(a=p.answer) for i, p in enumerate(problems)}
    return config, world, problems, formats, ScriptedEngine(load_tokenizer(random_qwen), completions)


def test_the_loop_and_curriculum_eval_give_the_same_verdict_on_every_item(mixed, random_qwen, tmp_path):
    config, world, problems, formats, engine = mixed
    assert (world.extraction, world.instruction) == ("boxed", BOXED_INSTRUCTION)
    with Verifier() as verifier:  # the Solver as agents/roles.make_solver builds it: the world's format
        solver = Solver(engine, verifier, config.solver, extraction=world.extraction, instruction=world.instruction)
        loop = {item.problem_id: item.correct for item in solver.evaluate(problems, 64, 8).items}
    loop_prompts, engine.prompts = engine.prompts, []
    summary, path = run_eval(
        config,
        ModelTarget(str(random_qwen)),
        "mixed",
        out=tmp_path / "eval.json",
        also_extractions=["auto"],
        engine=engine,
    )
    evaluated = {item["problem_id"]: bool(item["correct"]) for item in summary["items"]}
    assert evaluated == loop  # the same verdict on every problem
    assert sorted(engine.prompts) == sorted(loop_prompts)  # asked the same way, instruction included
    assert all(BOXED_INSTRUCTION.strip() in prompt for prompt in loop_prompts)
    assert loop == {pid: READ_BY_BOXED.get(fmt, False) for pid, fmt in formats.items()}
    assert summary["settings"]["extraction"] == "boxed" and summary["pass@1"] == pytest.approx(2 / 12)
    # Another rule is reported beside the headline number, labelled, never instead of it.
    assert summary["settings"]["also_extractions"] == ["auto"]
    assert summary["other_extractions"]["auto"]["pass@1"] == pytest.approx(
        sum(READ_BY_AUTO.get(fmt, False) for fmt in formats.values()) / 12
    )
    assert json.loads(path.read_text())["pass@1"] == summary["pass@1"]


def test_eval_of_a_model_that_is_not_a_run_asks_and_reads_the_boxed_format():
    from curriculum.cli import DEFAULT_EVAL_CONFIG

    config = load_config(DEFAULT_EVAL_CONFIG)
    assert config.world.answer_extraction == "boxed" and config.world.answer_instruction == BOXED_INSTRUCTION
    tiny = load_config(ROOT / "configs/tiny.yaml")  # the toy model's run: "answer: N", no instruction
    assert (tiny.world.answer_extraction, tiny.world.answer_instruction) == ("answer_colon", "")
