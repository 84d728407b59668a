"""The built-in arithmetic world: procedurally generated problems with exact answers and
step-by-step solutions that a tiny character-level model can learn.

Families and what a level means (each level up adds one digit or one term):

    add     4821+397=?          level = digits of the longer operand
    sub     4821-397=?          level = digits of the first operand (never a negative result)
    mul     456*78=?            level = digits(a) + 3*(digits(multiplier) - 1), multiplier 1-2 digits
    sum     12+7+30=?           3-5 terms; level = digits of the longest term + terms - 3
    linear  3*x+7=22, x=?       a is one digit; level = digits(x) + digits(b) - 1
    word    a templated story whose arithmetic is one of the five above, at the same levels

A solution is a trace of short lines, one column (or one division step) per line, ending
with `answer: <integer>`. Every step copies the digits it combines and writes the carry or
borrow explicitly, then the result so far, so each line depends on a few nearby characters:

    4821+397=?        4821-397=?        456*78=?              3*x-7=-22, x=?
    1+7+0=8 8         11-7-0=4 4        456*8                 3*x=-22+7
    2+9+0=11 18       12-9-1=2 24       6*8+0=48 8            -(22-7)
    8+3+1=12 218      8-3-1=4 424       5*8+4=44 48           12-7-0=5 5
    4+0+1=5 5218      4-0-0=4 4424      4*8+4=36 3648         2-0-1=1 15
    answer: 5218      answer: 4424      456*7                 x=-15/3
                                        ... (same steps)      15/3=5 r0 5
                                        3648+31920            x=-5
                                        8+0+0=8 8             answer: -5
                                        ... (column adds)
                                        answer: 35568

An add column is `digit+digit+carry_in=total result_so_far`; the last column writes its
whole total. A sub column borrows by writing the top digit as 1d (`12-9-1=2`: 10 was
borrowed, and the next column subtracts the borrow 1). A sum column is the add column with
more digits. A long-division step is `current/divisor=quotient_digit r<remainder> quotient`,
the first one taking as many leading digits as it needs. A line that only rewrites signs
(`-(22-7)`) comes first when the signed sum is not already `big-small` or `x+y`.
Word problems first restate their arithmetic (`45+27`), then solve it the same way.

`ArithmeticWorld.solve` parses question text of every family with regular expressions and
integer arithmetic only (never eval), and rejects numbers longer than MAX_NUMBER_DIGITS.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal

from curriculum.config import WorldConfig
from curriculum.errors import CurriculumError
from curriculum.records import Problem, ProblemSource, SolveRate, normalize_question

FAMILIES = ("add", "sub", "mul", "sum", "linear", "word")
WORD_OPS = ("add", "sub", "mul", "sum", "linear")  # the arithmetic a word problem can hide
MAX_NUMBER_DIGITS = 12  # the oracle rejects longer numbers
MAX_TERMS = 10  # most terms the oracle accepts in a sum
MAX_QUESTION_CHARS = 400
ANSWER_PREFIX = "answer: "
CREATED_BY = "world.arithmetic"

# Sampling domains (the oracle accepts more): sums have 3-5 terms, linear equations have a
# one-digit coefficient a in 2..9 and |x| of at most 3 digits, b of at most 4.
SUM_TERMS = (3, 4, 5)
LINEAR_MAX_X_DIGITS = 3
LINEAR_MAX_B_DIGITS = 4
NEGATIVE_X_PROBABILITY = 0.3

MutationKind = Literal["harder", "easier", "sibling"]


# ----------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Task:
    """A parsed question: which arithmetic on which numbers, and for word problems the story.

    numbers: add/sub (a, b); mul (a, multiplier); sum (terms...); linear (a, b, c) of a*x+b=c.
    """

    family: str
    op: str  # the arithmetic; equals family except for "word"
    numbers: tuple[int, ...]
    template: int = 0  # word problems only
    name: str = ""
    things: str = ""


def _num_digits(n: int) -> int:
    return len(str(abs(n)))


def answer_of(task: Task) -> int:
    n = task.numbers
    if task.op == "add":
        return n[0] + n[1]
    if task.op == "sub":
        return n[0] - n[1]
    if task.op == "mul":
        return n[0] * n[1]
    if task.op == "sum":
        return sum(n)
    a, b, c = n  # linear; parsing guarantees a != 0 and a divides c - b
    return (c - b) // a


def knobs_of(task: Task) -> dict[str, int]:
    n = task.numbers
    if task.op in ("add", "sub", "mul"):
        return {"digits_a": _num_digits(n[0]), "digits_b": _num_digits(n[1])}
    if task.op == "sum":
        return {"terms": len(n), "digits": max(_num_digits(t) for t in n)}
    a, b, _ = n
    return {"a_digits": _num_digits(a), "x_digits": _num_digits(answer_of(task)), "b_digits": _num_digits(b)}


def level_of(op: str, knobs: dict[str, int]) -> int:
    """The difficulty level of knobs; one more digit or term is one more level."""
    if op in ("add", "sub"):
        return max(knobs["digits_a"], knobs["digits_b"])
    if op == "mul":
        return knobs["digits_a"] + 3 * (knobs["digits_b"] - 1)
    if op == "sum":
        return max(1, knobs["digits"] + knobs["terms"] - 3)
    return max(1, knobs["x_digits"] + knobs["b_digits"] - 1 + 2 * (knobs["a_digits"] - 1))


def concepts_of(task: Task) -> list[str]:
    """Skill tags, the main one first; they do not name the size (level and knobs do).

    add.carry / add.no_carry (+ add.carry_chain: a carry passed on through a column),
    sub.borrow / sub.no_borrow (+ sub.borrow_chain, sub.negative), mul.1digit / mul.2digit
    (multiplier digits), sum.3terms ... sum.5terms, linear.positive_b / negative_b / zero_b
    (+ linear.negative_x), and word.<op> ahead of the tags of the hidden arithmetic.
    """
    n = task.numbers
    if task.op == "add":
        carries = _carries([str(n[0]), str(n[1])])
        tags = ["add.carry" if any(carries) else "add.no_carry"] + (["add.carry_chain"] if _chained(carries) else [])
    elif task.op == "sub":
        borrows = _borrows(str(max(n[0], n[1])), str(min(n[0], n[1])))
        tags = ["sub.borrow" if any(borrows) else "sub.no_borrow"] + (["sub.borrow_chain"] if _chained(borrows) else [])
        if n[0] < n[1]:
            tags.append("sub.negative")
    elif task.op == "mul":
        tags = [f"mul.{_num_digits(n[1])}digit"]
    elif task.op == "sum":
        tags = [f"sum.{len(n)}terms"]
    else:
        a, b, _ = n
        tags = ["linear.negative_b" if b < 0 else "linear.positive_b" if b > 0 else "linear.zero_b"]
        if answer_of(task) < 0:
            tags.append("linear.negative_x")
    if task.family == "word":
        tags.insert(0, f"word.{task.op}")
    return tags


def _carries(terms: list[str]) -> list[int]:
    """The carry out of each column when adding the digit strings."""
    carry, out = 0, []
    for i in range(max(len(t) for t in terms)):
        carry = (sum(int(t[-1 - i]) for t in terms if i < len(t)) + carry) // 10
        out.append(carry)
    return out


def _borrows(top: str, bottom: str) -> list[int]:
    """The borrow out of each column of top - bottom (top >= bottom)."""
    borrow, out = 0, []
    for i in range(len(top)):
        borrow = 1 if int(top[-1 - i]) - (int(bottom[-1 - i]) if i < len(bottom) else 0) - borrow < 0 else 0
        out.append(borrow)
    return out


def _chained(flags: list[int]) -> bool:
    """A carry (or borrow) that lands in a column which passes one on again."""
    return any(a and b for a, b in zip(flags, flags[1:]))


# ----------------------------------------------------------------------------- traces


def _column_add(terms: list[str]) -> tuple[list[str], str]:
    """Add non-negative digit strings column by column from the right.

    Line: `d1+d2+...+carry=total result_so_far`; a missing digit is written 0, and the
    last column writes its whole total, so the final carry needs no extra line.
    """
    width = max(len(t) for t in terms)
    carry, partial, lines = 0, "", []
    for i in range(width):
        column = [int(t[-1 - i]) if i < len(t) else 0 for t in terms]
        total = sum(column) + carry
        partial = (str(total) if i == width - 1 else str(total % 10)) + partial
        lines.append("+".join(map(str, column)) + f"+{carry}={total} {partial}")
        carry = total // 10
    return lines, partial


def _column_sub(top: str, bottom: str) -> tuple[list[str], str]:
    """top - bottom (top >= bottom) column by column; a borrow shows as the top digit 1d.

    Line: `top_digit-bottom_digit-borrow_in=digit result_so_far`. The result may keep
    leading zeros (1000-999 -> 0001); whoever reads it strips them.
    """
    borrow, partial, lines = 0, "", []
    for i in range(len(top)):
        x = int(top[-1 - i])
        y = int(bottom[-1 - i]) if i < len(bottom) else 0
        borrow_out = 1 if x - y - borrow < 0 else 0
        x += 10 * borrow_out
        digit = x - y - borrow
        partial = str(digit) + partial
        lines.append(f"{x}-{y}-{borrow}={digit} {partial}")
        borrow = borrow_out
    return lines, partial


def _mul_block(a: str, m: int) -> tuple[list[str], str]:
    """a times one digit m from the right: `digit*m+carry=total result_so_far`."""
    carry, partial, lines = 0, "", []
    for i in range(len(a)):
        total = int(a[-1 - i]) * m + carry
        partial = (str(total) if i == len(a) - 1 else str(total % 10)) + partial
        lines.append(f"{a[-1 - i]}*{m}+{carry}={total} {partial}")
        carry = total // 10
    return lines, partial


def _mul_lines(a: int, m: int) -> list[str]:
    """One block per multiplier digit (headed `a*digit` when there are several), then the
    shifted block results added column-wise."""
    if m < 10:
        return _mul_block(str(a), m)[0]
    lines: list[str] = []
    partials: list[str] = []
    for shift, digit in enumerate(reversed(str(m))):
        lines.append(f"{a}*{digit}")
        block, partial = _mul_block(str(a), int(digit))
        lines += block
        partials.append(partial + "0" * shift)
    lines.append("+".join(partials))
    lines += _column_add(partials)[0]
    return lines


def _long_division(n: int, d: int) -> list[str]:
    """n / d (n >= 0, d >= 1) from the left: `current/d=q r<rem> quotient_so_far`.

    The first step takes the shortest leading part of n that is at least d (all of n if
    none is), as on paper, so the quotient has no leading zeros.
    """
    digits = str(n)
    first = next((i for i in range(1, len(digits) + 1) if int(digits[:i]) >= d), len(digits))
    remainder, quotient, lines = 0, "", []
    for i, chunk in enumerate([digits[:first]] + list(digits[first:])):
        current = int(chunk) if i == 0 else remainder * 10 + int(chunk)
        q, remainder = divmod(current, d)
        quotient += str(q)
        lines.append(f"{current}/{d}={q} r{remainder} {quotient}")
    return lines


def _signed_sum(p: int, q: int) -> tuple[list[str], int]:
    """Lines computing p+q for signed p, q with unsigned column adds and subs.

    The caller has written `p+q` in its sign-merged form (22-7, -8+7, ...); when that form is
    not a plain `big-small` or `x+y`, one line rewrites it first (`-(8-7)`, `7-3`, `-(8+7)`).
    """
    if p >= 0 and q >= 0:
        lines, partial = _column_add([str(p), str(q)])
        return lines, int(partial)
    if p < 0 and q < 0:
        lines, partial = _column_add([str(-p), str(-q)])
        return [f"-({-p}+{-q})"] + lines, -int(partial)
    pos, neg = (p, -q) if p >= 0 else (q, -p)
    if pos >= neg:
        lines, partial = _column_sub(str(pos), str(neg))
        head = [] if p >= 0 else [f"{pos}-{neg}"]
        return head + lines, int(partial)
    lines, partial = _column_sub(str(neg), str(pos))
    return [f"-({neg}-{pos})"] + lines, -int(partial)


def _coefficient_x(a: int) -> str:
    return "x" if a == 1 else "-x" if a == -1 else f"{a}*x"


def _linear_lines(a: int, b: int, c: int) -> list[str]:
    """Move b across (`3*x=22-7`), combine with column steps, then divide by a."""
    lines: list[str] = []
    n = c
    if b != 0:
        lines.append(f"{_coefficient_x(a)}={c}{'-' if b > 0 else '+'}{abs(b)}")
        steps, n = _signed_sum(c, -b)
        lines += steps
    if abs(a) != 1:
        lines.append(f"x={n}/{a}")
        lines += _long_division(abs(n), abs(a))
    lines.append(f"x={n // a}")
    return lines


def _op_lines(op: str, n: tuple[int, ...]) -> list[str]:
    if op == "add":
        return _column_add([str(n[0]), str(n[1])])[0]
    if op == "sub":
        if n[0] >= n[1]:
            return _column_sub(str(n[0]), str(n[1]))[0]
        return [f"-({n[1]}-{n[0]})"] + _column_sub(str(n[1]), str(n[0]))[0]
    if op == "mul":
        return _mul_lines(n[0], n[1])
    if op == "sum":
        return _column_add([str(t) for t in n])[0]
    return _linear_lines(*n)


def expression_of(task: Task) -> str:
    """The arithmetic in compact form: `45+27`, `456*78`, `3*x-7=20`."""
    n = task.numbers
    if task.op == "add":
        return f"{n[0]}+{n[1]}"
    if task.op == "sub":
        return f"{n[0]}-{n[1]}"
    if task.op == "mul":
        return f"{n[0]}*{n[1]}"
    if task.op == "sum":
        return "+".join(map(str, n))
    a, b, c = n
    sign = "" if b == 0 else f"+{b}" if b > 0 else f"-{-b}"
    return f"{_coefficient_x(a)}{sign}={c}"


def solution_of(task: Task) -> str:
    lines = [expression_of(task)] if task.family == "word" else []
    lines += _op_lines(task.op, task.numbers)
    lines.append(f"{ANSWER_PREFIX}{answer_of(task)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- word templates

NAMES = (
    "Ana",
    "Ben",
    "Cara",
    "Dev",
    "Eli",
    "Finn",
    "Gia",
    "Hugo",
    "Ivy",
    "Jon",
    "Kai",
    "Lena",
    "Max",
    "Nia",
    "Omar",
    "Pia",
    "Raj",
    "Sara",
    "Tom",
    "Uma",
    "Vic",
    "Wen",
    "Yara",
    "Zoe",
)
THINGS = ("apples", "books", "cards", "coins", "eggs", "marbles", "pens", "shells", "stamps", "stickers")

# Slots: {name} {things} (repeats must match), unsigned {a} {b}, signed {c}, {terms} a list
# "12, 7 and 30", and the sign words {adds} (adds/subtracts) and {plus} (plus/minus) for b.
WORD_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("add", "{name} has {a} {things} and gets {b} more. How many {things} does {name} have now?"),
    ("add", "A shop sold {a} {things} in the morning and {b} in the afternoon. How many {things} did it sell?"),
    ("sub", "{name} has {a} {things} and gives away {b}. How many {things} are left?"),
    ("sub", "A box held {a} {things}. {name} took {b} of them. How many {things} are still in the box?"),
    ("mul", "{name} buys {b} bags with {a} {things} in each bag. How many {things} does {name} buy?"),
    ("mul", "There are {b} shelves and each shelf holds {a} {things}. How many {things} are there?"),
    ("sum", "{name} counts {terms} {things}. How many {things} is that in total?"),
    ("sum", "Over a few days {name} collected {terms} {things}. How many {things} did {name} collect?"),
    (
        "linear",
        "{name} thinks of a number, multiplies it by {a} and {adds} {b}. The result is {c}. What is the number?",
    ),
    ("linear", "{a} times a number {plus} {b} is {c}. What is the number?"),
)

_NUMBER = rf"(?:0|[1-9][0-9]{{0,{MAX_NUMBER_DIGITS - 1}}})"
_SLOT_PATTERNS = {
    "name": r"[A-Z][a-z]{1,11}",
    "things": r"[a-z]{2,15}",
    "a": _NUMBER,
    "b": _NUMBER,
    "c": rf"-?{_NUMBER}",
    "terms": rf"{_NUMBER}(?:, {_NUMBER})* and {_NUMBER}",
    "adds": r"adds|subtracts",
    "plus": r"plus|minus",
}


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    pattern, seen = "", set()
    for i, part in enumerate(parts):
        if i % 2 == 0:
            pattern += re.escape(part)
        elif part in seen:
            pattern += f"(?P={part})"
        else:
            seen.add(part)
            pattern += f"(?P<{part}>{_SLOT_PATTERNS[part]})"
    return re.compile(pattern)


_WORD_REGEXES = tuple(_template_regex(text) for _, text in WORD_TEMPLATES)


def _word_question(task: Task) -> str:
    n = task.numbers
    slots = {"name": task.name, "things": task.things}
    if task.op == "sum":
        slots["terms"] = ", ".join(map(str, n[:-1])) + f" and {n[-1]}"
    elif task.op == "linear":
        slots.update(a=str(n[0]), b=str(abs(n[1])), c=str(n[2]))
        slots["adds"] = "subtracts" if n[1] < 0 else "adds"
        slots["plus"] = "minus" if n[1] < 0 else "plus"
    else:
        slots.update(a=str(n[0]), b=str(n[1]))
    return re.sub(r"\{(\w+)\}", lambda m: slots[m.group(1)], WORD_TEMPLATES[task.template][1])


def question_of(task: Task) -> str:
    if task.family == "word":
        return _word_question(task)
    if task.op == "linear":
        return f"{expression_of(task)}, x=?"
    return f"{expression_of(task)}=?"


# ----------------------------------------------------------------------------- parsing

_LINEAR = re.compile(rf"(-?)(?:({_NUMBER})\*?)?x(?:([+-])({_NUMBER}))?=(-?{_NUMBER}),x=\?")
_SUM = re.compile(rf"{_NUMBER}(?:\+{_NUMBER})+")
_BINARY = re.compile(rf"({_NUMBER})([-*])({_NUMBER})")
_TOO_LONG_NUMBER = re.compile(rf"[0-9]{{{MAX_NUMBER_DIGITS + 1},}}")


def parse_question(text: str) -> tuple[Task | None, str]:
    """(task, "") or (None, reason). Reasons: too_long, non_ascii, number_too_large,
    too_many_terms, unparseable, no_integer_answer, negative_count (a word problem that takes
    away more than there is). Questions may space their operators freely."""
    if len(text) > MAX_QUESTION_CHARS:
        return None, "too_long"
    if not text.isascii():
        return None, "non_ascii"
    if _TOO_LONG_NUMBER.search(text):
        return None, "number_too_large"
    compact = "".join(text.split())
    if compact.endswith(",x=?"):
        return _parse_linear(compact)
    if compact.endswith("=?"):
        body = compact[:-2]
        if _SUM.fullmatch(body):
            terms = tuple(int(t) for t in body.split("+"))
            if len(terms) > MAX_TERMS:
                return None, "too_many_terms"
            return Task("add" if len(terms) == 2 else "sum", "add" if len(terms) == 2 else "sum", terms), ""
        match = _BINARY.fullmatch(body)
        if match:
            op = "sub" if match.group(2) == "-" else "mul"
            return Task(op, op, (int(match.group(1)), int(match.group(3)))), ""
        return None, "unparseable"
    return _parse_word(" ".join(text.split()))


def _parse_linear(compact: str) -> tuple[Task | None, str]:
    match = _LINEAR.fullmatch(compact)
    if not match:
        return None, "unparseable"
    minus, coefficient, sign, b_text, c_text = match.groups()
    a = int(coefficient) if coefficient is not None else 1
    a = -a if minus else a
    b = 0 if b_text is None else int(b_text) * (-1 if sign == "-" else 1)
    c = int(c_text)
    if a == 0 or (c - b) % a:
        return None, "no_integer_answer"
    return Task("linear", "linear", (a, b, c)), ""


def _parse_word(text: str) -> tuple[Task | None, str]:
    for index, regex in enumerate(_WORD_REGEXES):
        match = regex.fullmatch(text)
        if not match:
            continue
        op = WORD_TEMPLATES[index][0]
        slots = match.groupdict()
        story = {"template": index, "name": slots.get("name") or "", "things": slots.get("things") or ""}
        if op == "sum":
            terms = tuple(int(t) for t in re.findall(r"[0-9]+", slots["terms"]))
            if len(terms) > MAX_TERMS:
                return None, "too_many_terms"
            numbers: tuple[int, ...] = terms
        elif op == "linear":
            negative = slots.get("adds") == "subtracts" or slots.get("plus") == "minus"
            a, b, c = int(slots["a"]), int(slots["b"]) * (-1 if negative else 1), int(slots["c"])
            if a == 0 or (c - b) % a:
                return None, "no_integer_answer"
            numbers = (a, b, c)
        else:
            numbers = (int(slots["a"]), int(slots["b"]))
            if op == "sub" and numbers[0] < numbers[1]:
                return None, "negative_count"  # giving away more than one has
        return Task("word", op, numbers, **story), ""
    return None, "unparseable"


# ----------------------------------------------------------------------------- sampling


def knob_options(op: str, level: int) -> list[dict[str, int]]:
    """Every knob setting the sampler uses at `level` (each has level_of == level)."""
    if op == "add":
        return [{"digits_a": level, "digits_b": d} for d in range(1, level + 1)] + [
            {"digits_a": d, "digits_b": level} for d in range(1, level)
        ]
    if op == "sub":
        return [{"digits_a": level, "digits_b": d} for d in range(1, level + 1)]
    if op == "mul":
        return [{"digits_a": level - 3 * (db - 1), "digits_b": db} for db in (1, 2) if level - 3 * (db - 1) >= 1]
    if op == "sum":
        return [{"terms": t, "digits": level + 3 - t} for t in SUM_TERMS if level + 3 - t >= 1]
    options = [
        {"a_digits": 1, "x_digits": xd, "b_digits": level + 1 - xd}
        for xd in range(1, min(LINEAR_MAX_X_DIGITS, level) + 1)
    ]
    return [o for o in options if o["b_digits"] <= LINEAR_MAX_B_DIGITS] or options


def _random_digits(digits: int, rng: random.Random, low: int = 0) -> int:
    """A number with exactly `digits` digits; one-digit numbers start at `low`."""
    if digits == 1:
        return rng.randint(low, 9)
    return rng.randint(10 ** (digits - 1), 10**digits - 1)


def sample_numbers(op: str, knobs: dict[str, int], rng: random.Random) -> tuple[int, ...]:
    if op == "add":
        return _random_digits(knobs["digits_a"], rng), _random_digits(knobs["digits_b"], rng)
    if op == "sub":
        a, b = _random_digits(knobs["digits_a"], rng), _random_digits(knobs["digits_b"], rng)
        return (a, b) if a >= b else (b, a)  # only equal lengths can swap, so knobs hold
    if op == "mul":  # one-digit factors start at 2: times 0 and times 1 teach nothing
        return _random_digits(knobs["digits_a"], rng, low=2), _random_digits(knobs["digits_b"], rng, low=2)
    if op == "sum":
        digits = knobs["digits"]
        sizes = [rng.randint(max(1, digits - 1), digits) for _ in range(knobs["terms"])]
        sizes[rng.randrange(len(sizes))] = digits
        return tuple(_random_digits(size, rng) for size in sizes)
    a = _random_digits(knobs["a_digits"], rng, low=2)
    x = _random_digits(knobs["x_digits"], rng)
    if x and rng.random() < NEGATIVE_X_PROBABILITY:
        x = -x
    b = _random_digits(knobs["b_digits"], rng, low=1) * rng.choice((1, -1))
    return a, b, a * x + b


def _sample_task(family: str, op: str, knobs: dict[str, int], rng: random.Random) -> Task:
    numbers = sample_numbers(op, knobs, rng)
    if family != "word":
        return Task(family, op, numbers)
    template = rng.choice([i for i, (t_op, _) in enumerate(WORD_TEMPLATES) if t_op == op])
    return Task("word", op, numbers, template, rng.choice(NAMES), rng.choice(THINGS))


def _sample_at_level(family: str, level: int, rng: random.Random) -> Task:
    op = rng.choice(WORD_OPS) if family == "word" else family
    return _sample_task(family, op, rng.choice(knob_options(op, level)), rng)


def _harder_knobs(op: str, knobs: dict[str, int]) -> dict[str, int]:
    """One more digit on the knob that sets the level, keeping the concept's own knob
    (multiplier digits, number of terms)."""
    k = dict(knobs)
    if op == "add":
        k["digits_a" if k["digits_a"] >= k["digits_b"] else "digits_b"] += 1
    elif op in ("sub", "mul"):
        k["digits_a"] += 1
    elif op == "sum":
        k["digits"] += 1
    elif k["x_digits"] < LINEAR_MAX_X_DIGITS:
        k["x_digits"] += 1
    else:
        k["b_digits"] += 1
    return k


def _easier_knobs(op: str, knobs: dict[str, int]) -> dict[str, int] | None:
    """One digit (or term) less, one level down; None when there is nothing to remove."""
    k = dict(knobs)
    if op == "add":
        top = max(k["digits_a"], k["digits_b"])
        if top == 1:
            return None
        for key in ("digits_a", "digits_b"):
            k[key] = min(k[key], top - 1)
    elif op == "sub":
        if k["digits_a"] == 1:
            return None
        k["digits_a"] -= 1
        k["digits_b"] = min(k["digits_b"], k["digits_a"])
    elif op == "mul":
        if k["digits_a"] > 1:
            k["digits_a"] -= 1
        elif k["digits_b"] > 1:  # 7*38 (level 4) -> 3-digit times 1-digit (level 3)
            k = {"digits_a": 3 * k["digits_b"] - 3, "digits_b": k["digits_b"] - 1}
        else:
            return None
    elif op == "sum":
        if k["digits"] > 1:
            k["digits"] -= 1
        elif k["terms"] > min(SUM_TERMS):
            k["terms"] -= 1
        else:
            return None
    else:
        for key in ("x_digits", "b_digits"):
            if k[key] > 1:
                k[key] -= 1
                return k
        if k["a_digits"] == 1:
            return None
        k["a_digits"] -= 1
    return k


# ----------------------------------------------------------------------------- the world


class WorldConfigError(CurriculumError, ValueError):
    """A world.* or pretrain.levels setting this world cannot honour."""


class ArithmeticWorld:
    """Problems, held-out and seed sets, a solving oracle and variant-making for the Teacher.

    Everything is deterministic given `seed` (and the `rng` passed to sampling methods).
    """

    name = "arithmetic"
    report_by = "level"

    def __init__(self, config: WorldConfig, seed: int):
        unknown = [f for f in config.families if f not in FAMILIES]
        if unknown:
            raise WorldConfigError(f"world.families: unknown family '{unknown[0]}' (known: {', '.join(FAMILIES)})")
        self.config = config
        self.seed = seed
        self.extraction = config.answer_extraction
        self.instruction = config.answer_instruction
        self.families: tuple[str, ...] = tuple(dict.fromkeys(config.families))
        self.levels: tuple[int, ...] = tuple(range(1, config.max_level + 1))
        self._heldout: list[Problem] | None = None
        self._heldout_keys: set[tuple[str, str]] = set()

    # -- sampling

    def seed_candidates(self, n: int, rng: random.Random) -> list[Problem]:
        """`n` problems cycling over families x levels (one family's levels in a row)."""
        cells = [(f, level) for f in self.families for level in self.levels]
        return [self.sample(*cells[i % len(cells)], rng, source="seed") for i in range(n)]

    def screened(self, problem: Problem, rate: SolveRate) -> Problem:
        return problem  # levels come from the problem's knobs

    def sample(self, family: str, level: int, rng: random.Random, source: ProblemSource = "seed") -> Problem:
        self._check_cell(family, level)
        return self._problem(_sample_at_level(family, level, rng), source)

    def heldout(self) -> list[Problem]:
        """`heldout_per_level` distinct problems per family and level, fixed by the seed (a larger count
        keeps the smaller one's problems and adds to them)."""
        if self._heldout is None:
            problems: list[Problem] = []
            for family in self.families:
                for level in self.levels:
                    rng = random.Random(f"arithmetic:{self.seed}:heldout:{family}:{level}")
                    problems += self._distinct(
                        family,
                        level,
                        self.config.heldout_count(level),
                        rng,
                        set(),
                        "dataset",
                        "world.heldout_per_level",
                    )
            self._heldout = problems
            self._heldout_keys = {key_of(parse_question(p.question)[0]) for p in problems}
        return list(self._heldout)

    def seed_problems(self) -> list[Problem]:
        """`seed_set_size` problems spread evenly over families x levels, none held out."""
        held = self._held_keys()
        cells = [(f, level) for f in self.families for level in self.levels]
        rng = random.Random(f"arithmetic:{self.seed}:seed_set")
        base, extra = divmod(self.config.seed_set_size, len(cells))
        lucky = set(rng.sample(range(len(cells)), extra))
        problems: list[Problem] = []
        for index, (family, level) in enumerate(cells):
            count = base + (index in lucky)
            if count:
                problems += self._distinct(family, level, count, rng, held, "seed", "world.seed_set_size")
        return problems

    def training_problems(
        self, levels: list[int] | tuple[int, ...], n: int, rng: random.Random, weights: dict[int, float] | None = None
    ) -> list[Problem]:
        """`n` problems for pretraining over families x `levels`, each level's share of `n` in
        proportion to its weight (default 1), families cycled within a level; repeats are allowed
        (level 1 has few distinct questions) but no question matches a held-out one."""
        for level in levels:
            if level not in self.levels:
                raise WorldConfigError(
                    f"pretrain.levels: level {level} is outside 1..{self.config.max_level} (world.max_level)"
                )
        held = self._held_keys()
        share = [(weights or {}).get(level, 1.0) for level in levels]
        counts = [round(n * w / sum(share)) for w in share]
        counts[0] += n - sum(counts)  # rounding leftovers go to the first (easiest) level
        cells = [
            (self.families[i % len(self.families)], level) for level, count in zip(levels, counts) for i in range(count)
        ]
        problems = []
        for family, level in cells:
            for _ in range(1000):
                task = _sample_at_level(family, level, rng)
                if key_of(task) not in held:
                    problems.append(self._problem(task, "dataset"))
                    break
            else:
                raise WorldConfigError(
                    f"every {family} problem at level {level} is held out; lower world.heldout_per_level"
                )
        rng.shuffle(problems)
        return problems

    def _distinct(
        self,
        family: str,
        level: int,
        count: int,
        rng: random.Random,
        exclude: set[tuple[str, str]],
        source: ProblemSource,
        setting: str,
    ) -> list[Problem]:
        problems: list[Problem] = []
        seen = set(exclude)
        self._check_cell(family, level)
        for _ in range(200 * count):
            if len(problems) == count:
                break
            task = _sample_at_level(family, level, rng)
            key = key_of(task)
            if key not in seen:
                seen.add(key)
                problems.append(self._problem(task, source))
        if len(problems) < count:
            raise WorldConfigError(
                f"{setting}: found only {len(problems)} distinct {family} problems at level {level}, "
                f"{count} needed; lower it"
            )
        return problems

    def _held_keys(self) -> set[tuple[str, str]]:
        self.heldout()
        return self._heldout_keys

    def _check_cell(self, family: str, level: int) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown family '{family}' (known: {', '.join(FAMILIES)})")
        if level not in self.levels:
            raise ValueError(f"level {level} is outside 1..{self.config.max_level} (world.max_level)")

    # -- the Teacher's variants

    def mutate(
        self,
        problem: Problem,
        kind: MutationKind,
        rng: random.Random,
        round: int = 0,
        source: ProblemSource = "teacher",
    ) -> Problem:
        """A new problem of the same family and concept: `harder` adds a digit (one level up),
        `easier` removes one, `sibling` keeps the knobs with new numbers. At the edge of the
        level range (harder at max_level, easier at level 1) it makes a sibling instead."""
        task, reason = parse_question(problem.question)
        if task is None:
            raise ValueError(f"cannot mutate problem {problem.id}: its question is {reason}")
        knobs = knobs_of(task)
        level = level_of(task.op, knobs)
        target: dict[str, int] | None = knobs
        if kind == "harder":
            target = _harder_knobs(task.op, knobs) if level < self.config.max_level else knobs
        elif kind == "easier":
            target = _easier_knobs(task.op, knobs) if level > 1 else None
        elif kind != "sibling":
            raise ValueError(f"mutation kind must be harder, easier or sibling, not '{kind}'")
        target = target or knobs
        wanted = concepts_of(task)
        original = normalize_question(problem.question)
        # Numbers are drawn until the concept tags match the parent's; if the knobs make that
        # impossible (a carry in 1-digit sums of 3 terms...), first the main tag, then any.
        for attempt in range(600):
            candidate = _sample_task(task.family, task.op, target, rng)
            if normalize_question(question_of(candidate)) == original:
                continue
            tags = concepts_of(candidate)
            if (attempt < 300 and tags != wanted) or (attempt < 500 and tags[0] != wanted[0]):
                continue
            return self._problem(candidate, source, parent_id=problem.id, round=round)
        raise RuntimeError(f"could not vary problem {problem.id} ({kind}); its knobs {target} allow too few questions")

    # -- the oracle

    def solve(self, question: str) -> str | None:
        """The exact integer answer of any question in this world's templates, else None."""
        task, _ = parse_question(question)
        return None if task is None else str(answer_of(task))

    def check(self, problem: Problem) -> str | None:
        """None if the oracle agrees with the problem's answer and its solution ends with the
        right answer line; otherwise the reason."""
        task, reason = parse_question(problem.question)
        if task is None:
            return reason
        expected = answer_of(task)
        if problem.family and problem.family != task.family:
            return "family_mismatch"
        try:
            given = int(problem.answer.strip())
        except ValueError:
            return "answer_not_integer"
        if given != expected:
            return "wrong_answer"
        lines = problem.solution.strip().splitlines()
        if not lines or not lines[-1].startswith(ANSWER_PREFIX.strip()):
            return "missing_answer_line"
        if lines[-1].strip() != f"{ANSWER_PREFIX}{expected}":
            return "answer_line_mismatch"
        return None

    def unsolvable_reason(self, question: str) -> str:
        """Why the oracle cannot solve `question` (what its parser says)."""
        return f"oracle: {parse_question(question)[1]}"

    def problem_from_question(
        self,
        question: str,
        source: ProblemSource,
        parent_id: str | None = None,
        round: int = 0,
        created_by: str = CREATED_BY,
    ) -> Problem | None:
        """A full problem (answer, trace, family, level, knobs, concepts) for question text
        someone else wrote, e.g. the Generator; None if the oracle cannot solve it."""
        task, _ = parse_question(question)
        if task is None:
            return None
        return self._problem(task, source, parent_id, round, created_by, question=question)

    def _problem(
        self,
        task: Task,
        source: ProblemSource,
        parent_id: str | None = None,
        round: int = 0,
        created_by: str = CREATED_BY,
        question: str | None = None,
    ) -> Problem:
        knobs = knobs_of(task)
        return Problem(
            question=question if question is not None else question_of(task),
            answer=str(answer_of(task)),
            solution=solution_of(task),
            source=source,
            parent_id=parent_id,
            family=task.family,
            level=level_of(task.op, knobs),
            concepts=concepts_of(task),
            knobs=knobs,
            round_created=round,
            created_by=created_by,
        )


def key_of(task: Task | None) -> tuple[str, str]:
    """What makes two questions the same problem: family and arithmetic (a word problem
    with the same numbers but another name is the same problem)."""
    return ("", "") if task is None else (task.family, expression_of(task))
