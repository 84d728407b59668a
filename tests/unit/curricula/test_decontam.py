import json
from pathlib import Path

import pytest

from curriculum.config import ConfigError, from_dict
from curriculum.curricula.decontam import (
    ContaminationIndex,
    build_index,
    ngrams,
    normalized_tokens,
)
from curriculum.records import Problem

GSM_LIKE = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?"
)
OTHER = "A train leaves the station at 3 pm travelling at 60 km per hour toward a city 180 km away."


def dataset_problem(question: str) -> Problem:
    return Problem(question=question, answer="1", source="dataset")


def draft(question: str, parent: str | None = "p0") -> Problem:
    return Problem(question=question, answer="1", source="teacher", parent_id=parent, created_by="teacher")


@pytest.fixture
def index() -> ContaminationIndex:
    index = ContaminationIndex(n=8, threshold=0.5)
    index.add("gsm", [dataset_problem(GSM_LIKE), dataset_problem(OTHER)])
    index.add("tiny", [dataset_problem("12+30=?")])
    return index


def test_tokens_ignore_case_punctuation_and_latex_wrapping_but_keep_operators():
    assert normalized_tokens("Find $\\frac{1}{2}$ of 4821+397, then STOP.") == [
        "find",
        "frac",
        "1",
        "2",
        "of",
        "4821",
        "+",
        "397",
        "then",
        "stop",
    ]
    assert normalized_tokens("4821+397=?") != normalized_tokens("4821-397=?")
    assert ngrams(["a", "b"], 3) == {"a b"}
    assert ngrams(["a", "b", "c", "d"], 3) == {"a b c", "b c d"}


def test_a_reformatted_copy_is_caught_and_names_its_source(index):
    copy = GSM_LIKE.upper().replace(",", " ;").replace("?", "") + "  "
    found = index.is_contaminated(copy)
    assert found is not None and found.score == 1.0 and found.eval_set == "gsm"
    assert found.item == dataset_problem(GSM_LIKE).id


def test_partial_overlap_is_judged_by_the_threshold(index):
    # The first sentence of the question (18 tokens: 11 of its 8-grams) inside a new story.
    first = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips"
    text = first + " to her cousins on a rainy morning before the big school fair began in town"
    found = index.match(text)
    assert found is not None and 0 < found.score < 0.5
    assert index.is_contaminated(text) is None
    strict = ContaminationIndex(n=8, threshold=found.score)
    strict.add("gsm", [dataset_problem(GSM_LIKE)])
    assert strict.is_contaminated(text) is not None


def test_unrelated_and_short_texts(index):
    assert index.match("How many legs do seven spiders and three ants have in total together?") is None
    # Shorter than n: only the same whole question matches.
    assert index.is_contaminated("12 + 30 = ?") is not None
    assert index.is_contaminated("12+31=?") is None
    assert index.match("What is 12+30=? asked the teacher of the class") is None


def test_split_turns_matches_into_contaminated_drafts(index):
    clean, rejected = index.split([draft(GSM_LIKE), draft("7+8=?")], "generator", round=3)
    assert [p.question for p in clean] == ["7+8=?"]
    [r] = rejected
    assert (r.reason, r.source, r.round, r.parent_id, r.text) == ("contaminated", "generator", 3, "p0", GSM_LIKE)
    assert "gsm" in r.detail and "100%" in r.detail


def config_with(tmp_path: Path, **decontamination) -> dict:
    data = tmp_path / "mini.jsonl"
    data.write_text(json.dumps({"q": GSM_LIKE, "a": "72"}) + "\n")
    return {
        "data_root": str(tmp_path),
        "datasets": {"mini": {"path": "mini.jsonl", "question_field": "q", "answer_field": "a"}},
        "decontamination": decontamination,
    }


def test_index_from_config(tmp_path):
    config = from_dict(config_with(tmp_path, eval_sets=["mini"], ngram=5, threshold=0.9))
    heldout = [Problem(question="3+4=?", answer="7", source="dataset")]
    index = build_index(config, heldout)
    assert dict(index.sets) == {"mini": 1, "heldout": 1} and index.n == 5 and index.threshold == 0.9
    assert index.is_contaminated(GSM_LIKE).eval_set == "mini"
    assert index.is_contaminated("3 + 4 = ?").eval_set == "heldout"
    assert build_index(from_dict(config_with(tmp_path, eval_sets=["mini"], enabled=False))) is None
    assert build_index(from_dict(config_with(tmp_path, heldout=False))) is None  # nothing to check against


def test_unknown_eval_set_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="decontamination.eval_sets: 'gsm8k' is not a dataset"):
        from_dict(config_with(tmp_path, eval_sets=["gsm8k"]))
