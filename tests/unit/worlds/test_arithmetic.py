import random
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curriculum.config import ArithmeticWorldConfig, HFSolverConfig
from curriculum.records import Problem
from curriculum.worlds.arithmetic import (
    FAMILIES,
    ArithmeticWorld,
    knob_options,
    level_of,
    parse_question,
)

LEVELS = range(1, 6)


@pytest.fixture(scope="module")
def world():
    return ArithmeticWorld(ArithmeticWorldConfig(), seed=0)


# ----------------------------------------------------------------------------- a trace checker

_COLUMN = re.compile(r"([0-9]+(?:[-+*][0-9]+)+)=([0-9]+) ([0-9]+)")
_DIVISION = re.compile(r"([0-9]+)/([0-9]+)=([0-9]) r([0-9]+) ([0-9]+)")


def check_steps(solution: str) -> list[list[list[int]]]:
    """Assert every column and division step of a trace is right, carries and borrows
    included; return the column steps' operands block by block (a block ends at any line
    that is not a column step)."""
    blocks: list[list[list[int]]] = []
    previous = None  # (numbers, total, partial, is_sub) of the column step just above
    for line in solution.splitlines():
        column, division = _COLUMN.fullmatch(line), _DIVISION.fullmatch(line)
        if division:
            current, divisor, q, remainder, _ = map(int, division.groups())
            assert (q, remainder) == divmod(current, divisor), line
            assert division.group(5).endswith(division.group(3)), line
        if not column:
            previous = None
            continue
        left, total_text, partial = column.groups()
        total = int(total_text)
        numbers = [int(x) for x in re.split(r"[-+*]", left)]
        is_sub = "-" in left
        if "*" in left:
            digit, m, carry = numbers
            assert digit * m + carry == total, line
        elif is_sub:
            top, bottom, borrow = numbers
            assert 0 <= total <= 9 and top - bottom - borrow == total, line
            assert top < 10 or top - 10 - bottom - borrow < 0, f"needless borrow: {line}"
        else:
            assert sum(numbers) == total, line
        if previous is None:
            blocks.append([])
            assert numbers[-1] == 0, f"first column has a carry: {line}"
            assert partial in (str(total), str(total % 10)), line
        else:
            before, before_total, before_partial, _ = previous
            carry_in = (1 if before[0] >= 10 else 0) if is_sub else before_total // 10
            assert numbers[-1] == carry_in, f"wrong carry/borrow in: {line}"
            assert partial in (str(total % 10) + before_partial, str(total) + before_partial), line
        blocks[-1].append(numbers[:-1] + [total])
        previous = (numbers, total, partial, is_sub)
    return blocks


def column_operands(block: list[list[int]], count: int) -> list[int]:
    """Rebuild the numbers a column block added from the digits its steps copied."""
    return [sum((step[j] % 10) * 10**i for i, step in enumerate(block)) for j in range(count)]


# ----------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("family", FAMILIES)
def test_every_level_samples_valid_problems(world, family):
    rng = random.Random(family)
    for level in LEVELS:
        for _ in range(40):
            problem = world.sample(family, level, rng)
            assert world.check(problem) is None
            assert world.solve(problem.question) == problem.answer
            assert problem.solution.splitlines()[-1] == f"answer: {problem.answer}"
            assert (problem.family, problem.level, problem.source) == (family, level, "seed")
            assert problem.concepts and all(c.count(".") == 1 for c in problem.concepts)
            task, _ = parse_question(problem.question)
            assert level_of(task.op, problem.knobs) == level
            assert problem.knobs in knob_options(task.op, level)
            text = problem.question + problem.solution
            assert text.isascii() and all(ch.isprintable() or ch == "\n" for ch in text)
            check_steps(problem.solution)


def test_column_steps_copy_the_question_digits(world):
    rng = random.Random(3)
    for level in LEVELS:
        for family in ("add", "sum", "sub"):
            problem = world.sample(family, level, rng)
            terms = [int(t) for t in re.findall(r"[0-9]+", problem.question)]
            (block,) = check_steps(problem.solution)
            if family == "sub":  # the top digit is written 1d when it borrows
                assert column_operands(block, 2) == terms
            else:
                assert column_operands(block, len(terms)) == terms


def test_two_digit_multiplier_adds_shifted_block_results(world):
    problem, rng = None, random.Random(1)
    while problem is None or problem.knobs["digits_b"] != 2:
        problem = world.sample("mul", 5, rng)
    a, m = (int(t) for t in re.findall(r"[0-9]+", problem.question))
    lines = problem.solution.splitlines()
    assert lines[0] == f"{a}*{m % 10}"
    units, tens, adding = check_steps(problem.solution)
    assert f"{a * (m % 10)}+{a * (m // 10)}0" in lines
    assert column_operands(adding, 2) == [a * (m % 10), a * (m // 10) * 10]


def test_word_problems_restate_their_arithmetic_first(world):
    rng = random.Random(4)
    ops = set()
    for _ in range(200):
        problem = world.sample("word", rng.choice(LEVELS), rng)
        task, _ = parse_question(problem.question)
        ops.add(task.op)
        assert problem.concepts[0] == f"word.{task.op}"
        first = problem.solution.splitlines()[0]
        numbers = re.findall(r"[0-9]+", problem.question)
        assert sorted(re.findall(r"[0-9]+", first.replace("*x", ""))) == sorted(numbers)
    assert ops == {"add", "sub", "mul", "sum", "linear"}


def test_trace_lengths_fit_the_solver_budget(world, capsys):
    rng = random.Random(5)
    longest = {}
    for level in LEVELS:
        for family in FAMILIES:
            for _ in range(300):
                length = len(world.sample(family, level, rng).solution)
                longest[level] = max(longest.get(level, 0), length)
    # Worst cases: all nines and the longest linear equations.
    for question in (
        "99999+99999=?",
        "99999-9999=?",
        "99*99=?",
        "99999*9=?",
        "99999+99999+99999=?",
        "999+999+999+999+999=?",
        "9*x-9999=-10890, x=?",
        "9*x+999=-7992, x=?",
    ):
        problem = world.problem_from_question(question, source="seed")
        assert problem is not None and problem.level == 5, question
        longest[5] = max(longest[5], len(problem.solution))
    with capsys.disabled():
        print("\nmax trace length per level:", longest)
    assert longest[1] < longest[5] < HFSolverConfig().max_new_tokens - 20
    assert all(longest[level] < longest[level + 1] for level in range(1, 5))


# ----------------------------------------------------------------------------- fixed sets


def test_heldout_is_deterministic_and_spans_every_cell(world):
    again = ArithmeticWorld(ArithmeticWorldConfig(), seed=0).heldout()
    heldout = world.heldout()
    assert [p.id for p in heldout] == [p.id for p in again]
    assert len({p.id for p in heldout}) == len(heldout) == 6 * 5 * 20
    cells = {}
    for p in heldout:
        cells[(p.family, p.level)] = cells.get((p.family, p.level), 0) + 1
    assert cells == {(f, level): 20 for f in FAMILIES for level in LEVELS}
    other = ArithmeticWorld(ArithmeticWorldConfig(), seed=1).heldout()
    assert len({p.id for p in other} & {p.id for p in heldout}) < 100  # only tiny level-1 spaces overlap


def test_seed_set_is_spread_and_disjoint_from_heldout(world):
    seeds = world.seed_problems()
    assert len(seeds) == 100 == len({p.id for p in seeds})
    assert {p.source for p in seeds} == {"seed"}
    assert {(p.family, p.level) for p in seeds} == {(f, level) for f in FAMILIES for level in LEVELS}
    assert not {p.id for p in seeds} & {p.id for p in world.heldout()}
    assert [p.id for p in seeds] == [p.id for p in ArithmeticWorld(ArithmeticWorldConfig(), seed=0).seed_problems()]


def test_training_problems_never_hit_heldout():
    # A held-out set of 40 of the 64 one-digit products leaves few level-1 products to train on.
    world = ArithmeticWorld(ArithmeticWorldConfig(heldout_per_level=40), seed=0)
    held = {p.id for p in world.heldout()}
    training = world.training_problems([1, 2], 2400, random.Random(0))
    assert len(training) == 2400
    assert not {p.id for p in training} & held
    assert {p.level for p in training} == {1, 2}
    assert {p.family for p in training} == set(FAMILIES)
    repeat = world.training_problems([1, 2], 50, random.Random(0))
    assert [p.id for p in repeat] == [p.id for p in world.training_problems([1, 2], 50, random.Random(0))]
    with pytest.raises(ValueError, match="level 7 is outside 1..5"):
        world.training_problems([1, 7], 10, random.Random(0))


def test_validation_set_is_apart_from_heldout_and_kept_out_of_training():
    plain = ArithmeticWorld(ArithmeticWorldConfig(families=["add", "sub"]), seed=0)
    config = ArithmeticWorldConfig(families=["add", "sub"], validation_per_level={1: 10, 2: 30})
    world = ArithmeticWorld(config, seed=0)
    validation, held = world.validation(), world.heldout()
    assert [p.id for p in held] == [p.id for p in plain.heldout()]  # the reported set does not move
    assert plain.validation() == []
    assert len({p.id for p in validation}) == len(validation) == 2 * (10 + 30)
    assert {p.level for p in validation} == {1, 2}  # a level left out of the dict has none
    assert not {p.id for p in validation} & {p.id for p in held}
    assert [p.id for p in validation] == [p.id for p in ArithmeticWorld(config, seed=0).validation()]
    assert [p.id for p in validation] != [p.id for p in ArithmeticWorld(config, seed=1).validation()]
    trained = {p.id for p in world.training_problems([1, 2], 3000, random.Random(0))}
    assert not trained & {p.id for p in validation + held}
    assert not {p.id for p in world.seed_problems()} & {p.id for p in validation}
    # a base pretrained without a validation set keeps its cache key; one with it gets its own
    assert "validation_per_level" not in plain.pretraining_key()["world"]
    assert world.pretraining_key() != plain.pretraining_key()


@pytest.mark.parametrize(
    "counts, message",
    [
        (-1, "world.validation_per_level=-1 must be >= 0"),
        ({2: -3}, r"world.validation_per_level\[2\]=-3 must be >= 0"),
        ({7: 5}, r"world.validation_per_level\[7\]: level is outside 1..5"),
    ],
)
def test_bad_validation_counts_are_named(counts, message):
    with pytest.raises(ValueError, match=message):
        ArithmeticWorldConfig(validation_per_level=counts)


def test_too_small_a_level_space_is_a_clear_error():
    with pytest.raises(ValueError, match="world.heldout_per_level: found only 64 distinct mul problems at level 1"):
        ArithmeticWorld(ArithmeticWorldConfig(heldout_per_level=65, families=["mul"]), seed=0).heldout()


def test_unknown_family_is_rejected():
    with pytest.raises(ValueError, match="world.families: unknown family 'div'"):
        ArithmeticWorld(ArithmeticWorldConfig(families=["add", "div"]), seed=0)


# ----------------------------------------------------------------------------- mutation


@pytest.mark.parametrize("family", FAMILIES)
def test_mutations_move_knobs_and_keep_family_and_concept(world, family):
    rng = random.Random(family + "mutate")
    for level in LEVELS:
        for _ in range(6):
            parent = world.sample(family, level, rng)
            for kind, step in (("harder", 1), ("easier", -1), ("sibling", 0)):
                child = world.mutate(parent, kind, rng, round=3)
                assert world.check(child) is None
                assert child.question != parent.question
                assert (child.family, child.parent_id, child.round_created) == (family, parent.id, 3)
                assert child.source == "teacher"
                expected_level = min(5, max(1, level + step))
                assert child.level == expected_level, (kind, parent.question, child.question)
                seven_times_38 = family == "mul" and parent.knobs == {"digits_a": 1, "digits_b": 2}
                if expected_level == level:
                    assert child.knobs == parent.knobs
                elif kind == "easier" and seven_times_38:  # 7*38 made easier: 3-digit times 1-digit
                    assert child.knobs == {"digits_a": 3, "digits_b": 1}
                else:  # one knob moved by one digit or term
                    moved = [k for k in child.knobs if child.knobs[k] != parent.knobs[k]]
                    assert moved and all(abs(child.knobs[k] - parent.knobs[k]) == 1 for k in moved)
                # Where the easier knobs cannot hold the concept it changes: 1-digit
                # subtractions never borrow, 7*38 made easier has a 1-digit multiplier, and
                # a sum of 1-digit terms loses a term.
                impossible = kind == "easier" and (
                    (family == "sub" and level == 2 and parent.concepts == ["sub.borrow"])
                    or seven_times_38
                    or (family == "sum" and parent.knobs["digits"] == 1)
                )
                if not impossible:
                    assert child.concepts[0] == parent.concepts[0]


def test_sibling_keeps_all_concepts_when_it_can(world):
    rng = random.Random(9)
    for family in FAMILIES:
        parent = world.sample(family, 3, rng)
        child = world.mutate(parent, "sibling", rng)
        assert child.concepts == parent.concepts and child.knobs == parent.knobs


def test_mutate_rejects_unparseable_parent_and_bad_kind(world):
    bogus = Problem(question="what is love?", answer="1", source="teacher")
    with pytest.raises(ValueError, match="unparseable"):
        world.mutate(bogus, "harder", random.Random(0))
    with pytest.raises(ValueError, match="harder, easier or sibling"):
        world.mutate(world.sample("add", 2, random.Random(0)), "weirder", random.Random(0))


# ----------------------------------------------------------------------------- the oracle


@pytest.mark.parametrize(
    "question, answer",
    [
        ("4821 + 397 = ?", "5218"),
        ("5-8=?", "-3"),
        ("123*456=?", "56088"),
        ("1+2+3+4+5+6+7=?", "28"),
        ("x-3=4, x=?", "7"),
        ("-2*x+4=10, x=?", "-3"),
        ("3x+1=7, x=?", "2"),
        ("-x+1=7, x=?", "-6"),
        ("7*x=-21, x=?", "-3"),
        ("Bob has 12 pears and gets 30 more. How many pears does Bob have now?", "42"),
        ("9 times a number minus 4 is -40. What is the number?", "-4"),
        ("Li counts 1, 2, 3 and 4 cups. How many cups is that in total?", "10"),
    ],
)
def test_solve_reads_every_form_and_builds_a_checked_trace(world, question, answer):
    assert world.solve(question) == answer
    problem = world.problem_from_question(question, source="generator", parent_id="p1")
    assert problem.question == question and problem.answer == answer and problem.parent_id == "p1"
    assert world.check(problem) is None
    check_steps(problem.solution)


@pytest.mark.parametrize(
    "question, reason",
    [
        ("", "unparseable"),
        ("hello there", "unparseable"),
        ("1+=?", "unparseable"),
        ("1+2", "unparseable"),
        ("(1+2)*3=?", "unparseable"),
        ("1/0=?", "unparseable"),
        ("007+3=?", "unparseable"),
        ("-5+3=?", "unparseable"),
        ("1e100+1=?", "unparseable"),
        ("__import__('os').system('ls')=?", "unparseable"),
        ('exec("print(1)")+1=?', "unparseable"),
        ("Bob has 12 pears and gets 30 more. How many pears does Ann have now?", "unparseable"),
        ("1234567890123+1=?", "number_too_large"),
        ("9" * 5000 + "=?", "too_long"),
        ("+".join(["1"] * 11) + "=?", "too_many_terms"),
        ("\uff12+\uff13=?", "non_ascii"),
        ("\u0661+\u0662=?", "non_ascii"),
        ("Tom has 3 pens and gives away 5. How many pens are left?", "negative_count"),
        ("0*x+1=1, x=?", "no_integer_answer"),
        ("3*x+1=5, x=?", "no_integer_answer"),
    ],
)
def test_solve_rejects_garbage_quickly(world, question, reason):
    start = time.perf_counter()
    assert world.solve(question) is None
    assert world.problem_from_question(question, source="generator") is None
    assert world.check(Problem(question=question or " ", answer="1", source="teacher")) == reason
    assert time.perf_counter() - start < 0.05


def test_check_names_what_is_wrong(world):
    good = world.sample("add", 2, random.Random(0))
    assert world.check(good) is None
    wrong = good.model_copy(update={"answer": str(int(good.answer) + 1)})
    assert world.check(wrong) == "wrong_answer"
    assert world.check(good.model_copy(update={"answer": "seven"})) == "answer_not_integer"
    assert world.check(good.model_copy(update={"solution": "1+1=2"})) == "missing_answer_line"
    assert world.check(good.model_copy(update={"solution": "answer: 0"})) == "answer_line_mismatch"
    assert world.check(good.model_copy(update={"family": "mul"})) == "family_mismatch"


@settings(max_examples=150, deadline=None)
@given(
    a=st.integers(0, 10**7),
    b=st.integers(0, 10**7),
    m=st.integers(0, 999),
    terms=st.lists(st.integers(0, 10**6), min_size=3, max_size=8),
    coefficient=st.integers(-99, 99).filter(bool),
    x=st.integers(-(10**4), 10**4),
)
def test_traces_agree_with_integer_arithmetic(a, b, m, terms, coefficient, x):
    world = ArithmeticWorld(ArithmeticWorldConfig(), seed=0)
    sign = "+" if b >= 0 else "-"
    cases = {
        f"{a}+{b}=?": a + b,
        f"{a}-{b}=?": a - b,
        f"{a}*{m}=?": a * m,
        "+".join(map(str, terms)) + "=?": sum(terms),
        f"{coefficient}*x{sign}{abs(b)}={coefficient * x + b}, x=?": x,
    }
    for question, expected in cases.items():
        problem = world.problem_from_question(question, source="teacher")
        assert problem is not None and problem.answer == str(expected), question
        assert world.check(problem) is None
        check_steps(problem.solution)
