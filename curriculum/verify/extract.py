"""Reading the final answer out of a completion or a reference solution (`\\boxed{}`, `#### n`,
`answer: n`, the last number), and writing a reference solution in a world's answer format."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the worker process imports this package and should start fast
    from curriculum.config import Extraction

# Benchmark reference answers are at most ~200 characters; anything far longer is not a final answer.
MAX_ANSWER_CHARS = 1000


_BOXED_START = re.compile(r"\\(?:boxed|fbox|framebox)\s*\{")
_GSM8K = re.compile(r"####[ \t]*([^\n]*)")
_ANSWER_COLON = re.compile(r"\banswer\s*:[ \t]*([^\n]*)", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_MATH_DOLLAR = re.compile(r"(?<!\\)\$")  # a $ math delimiter; \$ is a dollar sign
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")


def _closing_brace(text: str, start: int) -> int | None:
    """Index of the } that closes the group whose content starts at `start`, or None."""
    depth = 1
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "\\":  # \{ and \} are literal braces (set notation), not grouping
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (or \\fbox, \\framebox), or None if it never closes."""
    starts = [m.end() for m in _BOXED_START.finditer(text)]
    if not starts:
        return None
    # Only the last one: falling back to earlier ones would make a hostile
    # "\boxed{\boxed{..." string quadratic, and a truncated answer is no answer.
    end = _closing_brace(text, starts[-1])
    return None if end is None else text[starts[-1] : end]


_BOLD_START = re.compile(r"\\(?:textbf|mathbf)\s*\{")


def _unwrap_bold(answer: str) -> str:
    """`\\textbf{(073)}` -> `(073)`: bold is decoration (AoPS boxes answers that way)."""
    if len(answer) > MAX_ANSWER_CHARS:  # rejected later anyway; nested \textbf{ would be quadratic
        return answer
    while (match := _BOLD_START.match(answer)) and _closing_brace(answer, match.end()) == len(answer) - 1:
        answer = answer[match.end() : -1].strip()
    return answer


def _drop_thousands_commas(answer: str) -> str:
    return answer.replace(",", "") if _THOUSANDS.fullmatch(answer) else answer


def _drop_final_period(answer: str) -> str:
    return answer[:-1].rstrip() if answer.endswith(".") and not answer.endswith("..") else answer


def clean_answer(answer: str) -> str:
    """Strip what surrounds an answer but is not part of it: spaces, markdown bold, $ or \\( \\)
    delimiters, bold text, a final period."""
    answer = _drop_final_period(answer.strip().strip("*").strip())  # "**Answer:** 5."
    for left, right in (("\\(", "\\)"), ("\\[", "\\]")):
        if answer.startswith(left) and answer.endswith(right):
            answer = answer[len(left) : -len(right)].strip()
    # `$\frac12$` and `$69$,$84$` (olympiadbench) mean the math inside. Prose with inline
    # math keeps its $ so that math-verify can find the delimited part.
    if len(answer) >= 2 and answer[0] == "$" and answer[-1] == "$" and not answer.endswith("\\$"):
        answer = _MATH_DOLLAR.sub("", answer).strip()
    return _drop_final_period(_unwrap_bold(answer))


def extract_answer(text: str, rule: Extraction) -> str | None:
    """The final answer in `text` by `rule`, or None when the rule finds none."""
    if rule == "auto":
        for sub_rule in ("boxed", "gsm8k", "answer_colon", "last_number"):
            found = extract_answer(text, sub_rule)
            if found is not None:
                return found
        return None
    if rule == "boxed":
        found = _last_boxed(text)
    elif rule == "gsm8k":
        matches = _GSM8K.findall(text)
        found = _drop_thousands_commas(matches[-1].strip()) if matches else None
    elif rule == "answer_colon":
        matches = _ANSWER_COLON.findall(text)
        found = matches[-1] if matches else None
    elif rule == "last_number":
        matches = _NUMBER.findall(text)
        found = _drop_thousands_commas(matches[-1]) if matches else None
    elif rule == "none":
        found = text
    else:
        raise ValueError(
            f"unknown extraction rule {rule!r}; expected one of auto, boxed, gsm8k, answer_colon, last_number, none"
        )
    if found is None:
        return None
    found = clean_answer(found)
    return found or None


_CALCULATOR = re.compile(r"<<[^<>\n]*>>")  # GSM8K's calculator annotations: "48/2 = <<48/2=24>>24"
_MARKERS = {"gsm8k": _GSM8K, "answer_colon": _ANSWER_COLON}  # rules that read a marked final line


def answer_line(answer: str, rule: Extraction) -> str:
    """A final line that `rule` reads as `answer` (what a model is asked to write)."""
    if rule in ("boxed", "auto"):
        return f"The final answer is \\boxed{{{answer}}}."
    if rule == "gsm8k":
        return f"#### {answer}"
    if rule == "answer_colon":
        return f"answer: {answer}"
    if rule == "last_number":
        return f"The final answer is {answer}."
    return answer


def solution_in_format(solution: str, answer: str, rule: Extraction, source_rule: Extraction = "none") -> str:
    """A reference solution written as a model is asked to answer: its worked steps kept, calculator
    annotations (`<<48/2=24>>`) dropped, and its final answer one that `rule` reads as `answer`.

    A solution whose final answer `rule` already reads as `answer` keeps it. Otherwise the marked
    final line the dataset's own rule (`source_rule`: GSM8K's `#### 72`) reads gives way to
    `answer_line(answer, rule)`, which is appended. Under rule "none" the answer is the whole text.
    """
    if rule == "none":
        return answer
    text = _CALCULATOR.sub("", solution).strip()
    if extract_answer(text, rule) == clean_answer(answer):
        return text
    marker = _MARKERS.get(source_rule)
    last = list(marker.finditer(text))[-1:] if marker is not None else []
    if last:
        text = (text[: last[0].start()] + text[last[0].end() :]).strip()
    return f"{text}\n{answer_line(answer, rule)}" if text else answer_line(answer, rule)
