import pytest

from curriculum.engines.base import Generation, InferenceEngine
from curriculum.evaluation import EvalResult, evaluate, format_accuracy_table
from curriculum.models import build_char_tokenizer
from curriculum.records import Problem
from curriculum.verify import Verifier


class ScriptedEngine(InferenceEngine):
    """Answers each prompt with a completion fixed in advance (and records how it was asked)."""

    def __init__(self, replies: dict[str, str]) -> None:
        self.tokenizer = build_char_tokenizer()
        self.replies = replies
        self.calls: list[dict] = []

    def generate(
        self, prompts, n=1, temperature=1.0, top_p=1.0, max_new_tokens=128, seed=0, batch_size=None, progress=False
    ):
        self.calls.append({"temperature": temperature, "n": n, "max_new_tokens": max_new_tokens})
        return [[Generation(self.replies[p], len(self.replies[p]) + 1, -1.0)] * n for p in prompts]

    def load_adapter(self, path):
        raise NotImplementedError

    @property
    def adapter_path(self):
        return None


def problem(question: str, answer: int, family: str, level: int) -> Problem:
    return Problem(question=question, answer=str(answer), source="seed", family=family, level=level)


# (problem, completion the engine gives, is it right)
CASES = [
    (problem("1+2=?", 3, "add", 1), "1+2+0=3 3\nanswer: 3", True),
    (problem("4+4=?", 8, "add", 1), "answer: 9", False),
    (problem("12+30=?", 42, "add", 2), "answer: 42", True),
    (problem("15+17=?", 32, "add", 2), "answer: 32", True),
    (problem("9-3=?", 6, "sub", 1), "answer: 6", True),
    (problem("20-3=?", 17, "sub", 2), "no answer line", False),
    (problem("71-18=?", 53, "sub", 2), "answer: 35", False),
]


@pytest.fixture(scope="module")
def result_and_engine():
    engine = ScriptedEngine({p.question + "\n": completion for p, completion, _ in CASES})
    with Verifier() as verifier:
        result = evaluate(engine, [p for p, _, _ in CASES], verifier, "answer_colon", max_new_tokens=50)
    return result, engine


def test_evaluation_decodes_greedily_once(result_and_engine):
    _, engine = result_and_engine
    assert engine.calls == [{"temperature": 0.0, "n": 1, "max_new_tokens": 50}]


def test_accuracy_by_level_family_and_cell(result_and_engine):
    result, _ = result_and_engine
    assert result.n == 7
    assert result.accuracy == pytest.approx(4 / 7)
    assert result.by_level == {1: pytest.approx(2 / 3), 2: pytest.approx(2 / 4)}
    assert result.by_family == {"add": pytest.approx(3 / 4), "sub": pytest.approx(1 / 3)}
    assert result.by_family_level == {
        ("add", 1): 0.5,
        ("add", 2): 1.0,
        ("sub", 1): 1.0,
        ("sub", 2): 0.0,
    }
    expected_tokens = sum(len(completion) + 1 for _, completion, _ in CASES) / 7
    assert result.mean_tokens == pytest.approx(expected_tokens)


def test_items_record_each_grade(result_and_engine):
    result, _ = result_and_engine
    assert [item.correct for item in result.items] == [right for _, _, right in CASES]
    assert result.items[1].extracted == "9"
    assert result.items[5].extracted is None
    assert result.items[0].problem_id == CASES[0][0].id


def test_metrics_and_round_trip(result_and_engine):
    result, _ = result_and_engine
    metrics = result.metrics("heldout")
    assert metrics["heldout/accuracy"] == pytest.approx(4 / 7)
    assert metrics["heldout/level_2/accuracy"] == pytest.approx(0.5)
    assert metrics["heldout/sub/accuracy"] == pytest.approx(1 / 3)
    again = EvalResult.from_dict(result.to_dict())
    assert again.by_family_level == result.by_family_level
    assert again.mean_tokens == result.mean_tokens


def test_accuracy_table_shows_cells_and_margins(result_and_engine):
    result, _ = result_and_engine
    lines = format_accuracy_table(result, title="toy").splitlines()
    assert lines[0] == "toy"
    assert lines[1].split() == ["family", "L1", "L2", "all"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:-1]}
    assert rows["add"] == ["50", "100", "75"]
    assert rows["sub"] == ["100", "0", "33"]
    assert rows["all"] == ["67", "50", "57"]
    assert "n=7" in lines[-1]


def test_problems_without_family_or_level_are_grouped():
    engine = ScriptedEngine({"What is 6*7?\n": "answer: 42"})
    loose = Problem(question="What is 6*7?", answer="42", source="dataset")
    with Verifier() as verifier:
        result = evaluate(engine, [loose], verifier, "answer_colon", max_new_tokens=10)
    assert result.accuracy == 1.0
    assert "L?" in format_accuracy_table(result)
    with pytest.raises(ValueError, match="at least one problem"):
        evaluate(engine, [], verifier, "answer_colon", max_new_tokens=10)


def test_drops_from_base_name_each_level_and_the_worst_so_far():
    from curriculum.evaluation import Cell, drops_from_base, worst_drop_so_far

    base = EvalResult(cells={("add", 1): Cell(10, 10), ("add", 2): Cell(10, 5), ("add", 3): Cell(10, 0)})
    now = EvalResult(cells={("add", 1): Cell(10, 7), ("add", 2): Cell(10, 6), ("add", 3): Cell(10, 4)})
    drops = drops_from_base(base, now, "level")
    assert drops == pytest.approx(
        {
            "retention/drop/L1": 30.0,
            "retention/drop/L2": -10.0,
            "retention/drop/L3": -40.0,
            "retention/worst_drop": 30.0,
        }
    )
    by_family = drops_from_base(base, now, "family")
    assert by_family["retention/drop/add"] == pytest.approx(100 * (15 / 30 - 17 / 30))
    assert worst_drop_so_far([drops["retention/worst_drop"], 5.0]) == {
        "retention/worst_drop_so_far": drops["retention/worst_drop"]
    }
    assert worst_drop_so_far([]) == {}
