"""Question text: the word-problem templates, writing a task as a question and parsing one back."""

from __future__ import annotations

import re

from curriculum.worlds.arithmetic.tasks import MAX_NUMBER_DIGITS, MAX_QUESTION_CHARS, MAX_TERMS, Task
from curriculum.worlds.arithmetic.traces import expression_of

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
        name, things = slots.get("name") or "", slots.get("things") or ""
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
        return Task("word", op, numbers, index, name, things), ""
    return None, "unparseable"
