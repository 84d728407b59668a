"""Step-by-step solutions: one column (or one division step) per line, ending with `answer: N`."""

from __future__ import annotations

from curriculum.worlds.arithmetic.tasks import ANSWER_PREFIX, Task, answer_of

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
