"""What an arithmetic question means: its task (family, numbers), answer, knobs, level and concepts."""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("add", "sub", "mul", "sum", "linear", "word")
WORD_OPS = ("add", "sub", "mul", "sum", "linear")  # the arithmetic a word problem can hide
MAX_NUMBER_DIGITS = 12  # the oracle rejects longer numbers
MAX_TERMS = 10  # most terms the oracle accepts in a sum
MAX_QUESTION_CHARS = 400
ANSWER_PREFIX = "answer: "


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
