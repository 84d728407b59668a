"""Drawing tasks at a level, and the knobs one level harder or easier."""

from __future__ import annotations

import random

from curriculum.worlds.arithmetic.tasks import WORD_OPS, Task
from curriculum.worlds.arithmetic.text import NAMES, THINGS, WORD_TEMPLATES

# Sampling domains (the oracle accepts more): sums have 3-5 terms, linear equations have a
# one-digit coefficient a in 2..9 and |x| of at most 3 digits, b of at most 4.
SUM_TERMS = (3, 4, 5)
LINEAR_MAX_X_DIGITS = 3
LINEAR_MAX_B_DIGITS = 4
NEGATIVE_X_PROBABILITY = 0.3


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


def sample_task(family: str, op: str, knobs: dict[str, int], rng: random.Random) -> Task:
    numbers = sample_numbers(op, knobs, rng)
    if family != "word":
        return Task(family, op, numbers)
    template = rng.choice([i for i, (t_op, _) in enumerate(WORD_TEMPLATES) if t_op == op])
    return Task("word", op, numbers, template, rng.choice(NAMES), rng.choice(THINGS))


def sample_at_level(family: str, level: int, rng: random.Random) -> Task:
    op = rng.choice(WORD_OPS) if family == "word" else family
    return sample_task(family, op, rng.choice(knob_options(op, level)), rng)


def harder_knobs(op: str, knobs: dict[str, int]) -> dict[str, int]:
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


def easier_knobs(op: str, knobs: dict[str, int]) -> dict[str, int] | None:
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
