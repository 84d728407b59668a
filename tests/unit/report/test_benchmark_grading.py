"""The verifier agrees with each benchmark about its own answers.

For every dataset in configs/benchmarks.yaml, grade what the data itself gives as the
answer (its worked solution where that marks a final answer with \\boxed{} or ####,
otherwise the answer field exactly as written in the file) against the reference
answer the loader produced. Disagreements are printed and listed in the failure.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from curriculum.config import DatasetSpec, load_config
from curriculum.verify import Verifier
from curriculum.worlds.dataset import DatasetWorld
from curriculum.worlds.loading import load_problem_set

REPO = Path(__file__).resolve().parents[3]
CONFIG = load_config(REPO / "configs" / "benchmarks.yaml")
DATA_ROOT = (REPO / CONFIG.data_root).resolve()  # data_root is relative to the repository root
MIN_AGREEMENT = 0.99
FINAL_ANSWER_MARK = re.compile(r"\\(?:boxed|fbox|framebox)\s*\{|####")
PLAIN_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")

pytestmark = pytest.mark.skipif(
    not DATA_ROOT.is_dir(),
    reason=f"benchmark data folder {DATA_ROOT} is absent (see configs/benchmarks.yaml data_root)",
)


@pytest.fixture(scope="module")
def verifier():
    with Verifier() as v:
        yield v


def answers_as_written(spec: DatasetSpec) -> list[str]:
    """The answer field of every record, as the file writes it (lists joined, numbers as printed)."""
    path = DATA_ROOT / spec.path
    assert path.suffix == ".jsonl", f"this test reads {path} directly and expects JSON Lines"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    values = [record[spec.answer_field] for record in records]
    return [", ".join(map(str, v)) if isinstance(v, list) else str(v) for v in values]


def report(name: str, what: str, total: int, disagreements: list[str]) -> tuple[float, str]:
    agreement = 1 - len(disagreements) / total
    lines = [f"{name}: {what} agreement {agreement:.4f} ({total - len(disagreements)}/{total})"]
    lines += [f"  disagrees: {item}" for item in disagreements]
    text = "\n".join(lines)
    print(text)
    return agreement, text


@pytest.mark.parametrize("name", sorted(CONFIG.datasets))
def test_grading_the_datasets_own_answers_agrees(name, verifier):
    spec = CONFIG.datasets[name]
    problems = load_problem_set(spec, DATA_ROOT, name)
    written = answers_as_written(spec)
    assert len(written) == len(problems)
    texts, rules = [], []
    for problem, as_written in zip(problems, written):
        if FINAL_ANSWER_MARK.search(problem.solution):
            texts.append(problem.solution)
            rules.append("auto")  # \\boxed{} or ####, whichever the data writes
        else:
            texts.append(as_written)
            rules.append("none")
    disagreements = []
    for rule in set(rules):
        chosen = [i for i, r in enumerate(rules) if r == rule]
        grades = verifier.grade_many([texts[i] for i in chosen], [problems[i].answer for i in chosen], rule)
        for i, grade in zip(chosen, grades):
            if not grade.correct:
                disagreements.append(
                    f"line {i + 1}: reference {problems[i].answer!r}, graded text gave {grade.extracted!r}"
                )
    agreement, text = report(name, "grading", len(problems), disagreements)
    assert agreement >= MIN_AGREEMENT, text


@pytest.mark.parametrize("name", sorted(CONFIG.datasets))
def test_math_verify_reads_each_reference_answer_as_itself(name, verifier):
    """Without the string and number shortcuts, so a model that writes the same answer with
    different spacing or delimiters is not marked wrong because math-verify cannot read it."""
    problems = load_problem_set(CONFIG.datasets[name], DATA_ROOT, name)
    symbolic = [p.answer for p in problems if not PLAIN_NUMBER.fullmatch(p.answer)]
    if not symbolic:
        pytest.skip(f"{name}: every reference answer is a plain number (compared exactly, not by math-verify)")
    results = verifier.math_verify_many([(answer, answer) for answer in symbolic])
    disagreements = [repr(answer) for answer, ok in zip(symbolic, results) if not ok]
    agreement, text = report(name, "math-verify self", len(symbolic), disagreements)
    assert agreement >= MIN_AGREEMENT, text


WITH_SOLUTIONS = sorted(
    name for name, spec in CONFIG.datasets.items() if spec.solution_field or spec.extraction != "none"
)
CALCULATOR = re.compile(r"<<[^<>\n]*>>")
GSM8K_FINAL_LINE = re.compile(r"\n?####[^\n]*$")


def solutions_as_written(spec: DatasetSpec) -> list[str]:
    """Each record's worked solution as the file writes it (olympiadbench: the first of its list)."""
    path = DATA_ROOT / spec.path
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    values = [record[spec.solution_field or spec.answer_field] for record in records]
    return [value[0] if isinstance(value, list) else value for value in values]


@pytest.mark.parametrize("name", WITH_SOLUTIONS)
def test_a_dataset_worlds_reference_solutions_keep_their_steps_and_grade_right_in_its_format(name, verifier):
    """What the DPO winner and the SFT target are when every attempt fails: the loop's own grader
    (the world's extraction rule) marks each one right, and none lost its worked steps."""
    world_config = load_config(
        REPO / "configs/gsm8k_qwen.yaml",
        [f"data_root={DATA_ROOT}", f"world.seed_sets=[{name}]", "world.heldout_sets=[amc23]", "world.heldout_size={}"],
    )
    world = DatasetWorld(world_config)
    rule = world.extraction
    assert rule == "boxed"
    problems = world.seed_pool
    written = solutions_as_written(CONFIG.datasets[name])
    assert len(problems) == len(written)  # no question repeats in these files
    grades = verifier.grade_many([p.solution for p in problems], [p.answer for p in problems], rule)
    wrong = [
        f"line {i + 1}: {p.solution[-120:]!r} read as {g.extracted!r}, reference {p.answer!r}"
        for i, (p, g) in enumerate(zip(problems, grades))
        if not g.correct
    ]
    assert not wrong, "\n".join(wrong[:10])
    for line, (problem, original) in enumerate(zip(problems, written), start=1):
        steps = GSM8K_FINAL_LINE.sub("", CALCULATOR.sub("", original)).strip()
        assert problem.solution.startswith(steps), f"{name} line {line} lost steps: {problem.solution[:200]!r}"
        if CONFIG.datasets[name].extraction == "gsm8k":  # annotations and "#### 72" gone, "\\boxed{72}" in their place
            assert "<<" not in problem.solution and "####" not in problem.solution
            assert problem.solution.endswith(f"\\boxed{{{problem.answer}}}.")
