"""Answer extraction and equivalence: rules, math-verify equivalences, hostile inputs, threads."""

from __future__ import annotations

import pickle
import threading
import time

import pytest

from curriculum.verify import Grade, Verifier, answer_line, clean_answer, extract_answer, solution_in_format

# Startup of the math-verify worker (a fresh Python importing sympy) plus one timeout,
# with room for a busy shared 2-core machine.
SLOW_BOUND_S = 20.0


@pytest.fixture(scope="module")
def verifier():
    with Verifier(timeout_s=1.0) as v:
        yield v


# ----------------------------------------------------------------------------- extraction


GSM8K_SOLUTION = "She sold 48/2 = <<48/2=24>>24 clips in May.\nShe sold 48+24 = <<48+24=72>>72 clips.\n#### 72"


@pytest.mark.parametrize("rule", ["boxed", "auto", "gsm8k", "answer_colon", "last_number"])
def test_a_reference_solution_is_rewritten_so_the_worlds_rule_reads_its_answer(rule):
    solution = solution_in_format(GSM8K_SOLUTION, "72", rule, source_rule="gsm8k")
    assert extract_answer(solution, rule) == "72" and "<<" not in solution
    assert solution.startswith("She sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips.")
    if rule in ("boxed", "answer_colon"):  # GSM8K's own final line gives way to the world's
        assert "####" not in solution and solution.endswith(answer_line("72", rule))


def test_a_solution_whose_final_answer_the_rule_already_reads_is_kept():
    math = "Half of $4$ is $2$, so the answer is $\\boxed{2}$."
    assert solution_in_format(math, "2", "boxed") == math
    # a boxed intermediate result that is not the answer: the answer is stated after the steps
    fixed = solution_in_format("First $\\boxed{3}$, then add one: 4", "4", "boxed")
    assert fixed == "First $\\boxed{3}$, then add one: 4\nThe final answer is \\boxed{4}."
    assert solution_in_format("anything", "4", "none") == "4"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("so the answer is $\\boxed{42}$.", "42"),
        ("first \\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("nested \\boxed{\\frac{a}{\\sqrt{b}}} done", "\\frac{a}{\\sqrt{b}}"),
        ("a set \\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # escaped braces do not close the box
        ("old style \\fbox{7}", "7"),
        ("AoPS \\framebox{204} minutes", "204"),
        ("spaced \\boxed {5}", "5"),
        ("bold \\boxed{\\textbf{(073)}}", "(073)"),
    ],
)
def test_boxed_takes_the_last_balanced_box(text, expected):
    assert extract_answer(text, "boxed") == expected


@pytest.mark.parametrize("text", ["no box here", "\\boxed{unclosed {x}", "cut off \\boxed{\\frac{1}{2"])
def test_boxed_finds_nothing_without_a_closed_box(text):
    assert extract_answer(text, "boxed") is None


def test_gsm8k_rule_reads_the_last_marker_and_drops_thousands_commas():
    solution = "She makes 9 * 2 = $<<9*2=18>>18.\n#### 18"
    assert extract_answer(solution, "gsm8k") == "18"
    assert extract_answer("work\n#### 1,450,000", "gsm8k") == "1450000"
    assert extract_answer("#### 1\nmore\n#### -3", "gsm8k") == "-3"
    assert extract_answer("no marker 12", "gsm8k") is None


def test_answer_colon_reads_the_last_answer_line_case_insensitively():
    world_solution = "12 + 30 = 42\nanswer: 42"
    assert extract_answer(world_solution, "answer_colon") == "42"
    assert extract_answer("Answer: 3\nthen ANSWER: 5\n", "answer_colon") == "5"
    assert extract_answer("**Answer:** $\\frac{1}{2}$.", "answer_colon") == "\\frac{1}{2}"
    assert extract_answer("the result is 7", "answer_colon") is None


def test_last_number_rule():
    assert extract_answer("from 3 apples to -12.5 pears", "last_number") == "-12.5"
    assert extract_answer("total 1,234 items", "last_number") == "1234"
    assert extract_answer("pairs 1,2,3", "last_number") == "3"
    assert extract_answer("no digits", "last_number") is None


def test_none_rule_is_the_whole_text_stripped():
    assert extract_answer("  \\left( 3, \\frac{\\pi}{2} \\right)\n", "none") == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert extract_answer("   ", "none") is None


def test_auto_prefers_boxed_then_gsm8k_then_answer_colon_then_last_number():
    assert extract_answer("#### 1\nanswer: 2\n\\boxed{3} 4", "auto") == "3"
    assert extract_answer("answer: 2\n#### 1 and 9", "auto") == "1 and 9"
    assert extract_answer("answer: 2\nthen 9", "auto") == "2"
    assert extract_answer("then 9 and 10", "auto") == "10"
    assert extract_answer("nothing", "auto") is None


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="unknown extraction rule 'latex'"):
        extract_answer("x", "latex")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw, clean",
    [("$5$", "5"), ("$69$,$84$", "69,84"), ("\\(x+1\\)", "x+1"), ("104.", "104"), ("\\$36", "\\$36"), ("**7**", "7")],
)
def test_clean_answer_strips_delimiters_not_content(raw, clean):
    assert clean_answer(raw) == clean


# ----------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize(
    "predicted, reference",
    [
        ("0.5", "\\frac{1}{2}"),
        ("\\frac{1}{2}", "0.5"),
        ("27", "27.0"),
        ("025", "25"),
        ("\\{2, 1\\}", "\\{1,2\\}"),
        ("84, 69", "69, 84"),
        ("(4,5,7),(1,8,19),(2,7,13)", "(1,8,19), (2,7,13), (4,5,7)"),
        ("(3, \\pi/2)", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("x = 5", "5"),
        ("1,000", "1000"),
        ("\\dfrac{14}{3}", "\\frac{14}{3}"),
        ("10\\%", "0.1"),
    ],
)
def test_equivalent_answers(verifier, predicted, reference):
    assert verifier.equivalent(predicted, reference)


@pytest.mark.parametrize(
    "predicted, reference",
    [
        ("0.49", "\\frac{1}{2}"),
        ("28", "27.0"),
        ("(2, 1)", "(1, 2)"),  # tuples are ordered
        ("\\{1, 3\\}", "\\{1, 2\\}"),
        ("x + 1", "x - 1"),
        ("", "5"),
        (None, "5"),
    ],
)
def test_different_answers(verifier, predicted, reference):
    assert not verifier.equivalent(predicted, reference)


def test_grade_and_grade_many(verifier):
    assert verifier.grade("so \\boxed{\\frac{2}{4}}", "\\frac12") == Grade("\\frac{2}{4}", True)
    assert verifier.grade("12 + 30 = 42\nanswer: 42", "42", "answer_colon") == Grade("42", True)
    assert verifier.grade("I give up", "42", "boxed") == Grade(None, False)
    completions = ["answer: 7", "answer: 8", "\\boxed{0.5}", "\\boxed{0.5}", "answer: x"]
    references = ["7", "7", "\\frac{1}{2}", "\\frac{1}{3}", "7"]
    grades = verifier.grade_many(completions, references, "auto")
    assert [g.correct for g in grades] == [True, False, True, False, False]
    assert [g.extracted for g in grades] == ["7", "8", "0.5", "0.5", "x"]
    with pytest.raises(ValueError, match="2 completions but 1 references"):
        verifier.grade_many(["a", "b"], ["a"])


def test_plain_numbers_do_not_start_the_math_verify_worker():
    fresh = Verifier()
    grades = fresh.grade_many([f"answer: {n}" for n in range(500)], [str(n if n % 2 else n + 1) for n in range(500)])
    assert sum(g.correct for g in grades) == 250
    assert fresh._worker is None


def test_math_verify_many_skips_the_shortcuts(verifier):
    assert verifier.math_verify_many([("\\frac{1}{2}", "\\frac{1}{2}"), ("27", "27.0"), ("3", "4")]) == [
        True,
        True,
        False,
    ]


# ----------------------------------------------------------------------------- bounded time


@pytest.mark.parametrize(
    "hostile",
    [
        "\\boxed{" + "9" * 1_000_000 + "}",
        "\\boxed{" + "x+" * 500_000 + "1}",
        "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
        "\\boxed{" + "\\textbf{" * 20_000 + "1" + "}" * 20_000 + "}",
        "\\boxed{" + "(" * 200 + "1" + ")" * 200 + "}",
        "\\boxed{2^2^2^2^2^2^2^2}",
        "\\boxed{2^{2^{2^{2^{2^{2}}}}}}",
        "answer: 2**2**2**2**2**2",
    ],
)
def test_hostile_inputs_are_rejected_by_cheap_guards(verifier, hostile):
    timeouts = verifier.timeouts
    start = time.monotonic()
    assert verifier.grade(hostile, "\\frac{1}{2}").correct is False
    assert time.monotonic() - start < 2.0
    assert verifier.timeouts == timeouts  # refused before math-verify, not killed after


def test_a_slow_item_is_killed_graded_false_and_the_rest_still_graded():
    with Verifier(timeout_s=1.0) as v:
        start = time.monotonic()
        grades = v.grade_many(["\\boxed{9^{9^{9}}}", "\\boxed{\\frac{2}{4}}", "\\boxed{x}"], ["5", "\\frac{1}{2}", "x"])
        elapsed = time.monotonic() - start
        assert [g.correct for g in grades] == [False, True, True]
        assert v.timeouts == 1
        assert elapsed < SLOW_BOUND_S


def test_works_off_the_main_thread(verifier):
    results: list[object] = []

    def grade() -> None:
        try:
            results.append(
                [g.correct for g in verifier.grade_many(["\\boxed{\\sqrt{4}}", "\\boxed{3}"], ["2", "\\pi"])]
            )
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=grade) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SLOW_BOUND_S)
    assert results == [[True, False]] * 3


def test_a_pickled_verifier_grades_with_its_own_worker(verifier):
    verifier.equivalent("\\frac{1}{2}", "0.5")  # make sure the original has a worker to not carry
    copy = pickle.loads(pickle.dumps(verifier))
    try:
        assert copy.timeout_s == verifier.timeout_s
        assert copy.equivalent("\\frac{3}{6}", "0.5")
        assert copy._worker is not verifier._worker
    finally:
        copy.close()


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        Verifier(timeout_s=0)
