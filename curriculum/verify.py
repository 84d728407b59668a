"""Answer extraction and equivalence checking, with bounded time per item.

Extraction pulls the final answer out of a completion or a reference solution
(`\\boxed{}`, `#### n`, `answer: n`, the last number). Equivalence compares two
extracted answers: plain numbers exactly (the arithmetic world's common case, no
subprocess needed), everything else with math-verify.

math-verify's own timeouts use `signal.alarm`, which only works on the main thread.
So math-verify runs in a persistent worker process (started on first need) with its
timeouts disabled; the parent waits at most `timeout_s` per item and kills and
restarts the worker when an item exceeds it, grading that item False. This works
from any thread and inside Ray actors. Model output is never evaluated as code: it
only ever reaches math-verify's LaTeX/expression parser, and only after cheap guards
(length, nesting depth, exponent towers).
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the worker process imports this module and should start fast
    from curriculum.config import Extraction

# Guards applied before an answer reaches math-verify. Benchmark reference answers
# are at most ~200 characters; anything far longer is not a final answer.
MAX_ANSWER_CHARS = 1000
MAX_NESTING_DEPTH = 20  # {, (, [ nested deeper than this is not a real answer
MAX_EXPONENT_DEPTH = 2  # a^{b^{c}} is fine; a^{b^{c^{d}}} and deeper can explode sympy
WORKER_START_TIMEOUT_S = 120.0  # importing sympy on a busy 2-core machine can take a while
WORKER_CHUNK = 256  # pairs per message, so decoding a message never eats into an item's time budget
ORPHAN_CPU_LIMIT_S = 60  # CPU seconds per item before a worker whose parent is gone ends itself


@dataclass(frozen=True)
class Grade:
    extracted: str | None
    correct: bool


# ----------------------------------------------------------------------------- extraction

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
            found = extract_answer(text, sub_rule)  # type: ignore[arg-type]
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


# ----------------------------------------------------------------------------- guards

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\*\*|\d+(?:\.\d+)?|\S")
_OPEN = {"{", "(", "["}
_CLOSE = {"}", ")", "]"}


def _nesting_depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif ch in _CLOSE:
            depth = max(depth - 1, 0)
    return deepest


def _exponent_depth(text: str) -> int:
    """How many exponents stack: 2^3 -> 1, 2^{3^4} -> 2, 2^2^2^2 or 2**2**2**2 -> 3.

    LaTeX semantics: an unbraced exponent is a single token, so x^2y^2 is depth 1.
    """
    deepest = 0
    depth = 0  # exponent depth of the current group
    chain = 0  # exponents stacked on the current base within this group
    stack: list[tuple[int, int, bool]] = []
    expecting_exponent = False  # the previous token was ^ or **
    after_exponent = False  # the previous token completed an exponent; only ^ continues the chain
    for token in _TOKEN.findall(text):
        if token in ("^", "**"):
            chain += 1
            deepest = max(deepest, depth + chain)
            expecting_exponent, after_exponent = True, False
            continue
        if after_exponent:
            chain = 0
            after_exponent = False
        if token in _OPEN:
            stack.append((depth, chain, expecting_exponent))
            if expecting_exponent:
                depth += chain
            chain = 0
            expecting_exponent = False
        elif token in _CLOSE:
            if stack:
                depth, chain, was_exponent = stack.pop()
                after_exponent = was_exponent
                if not was_exponent:
                    chain = 0
        elif expecting_exponent:
            expecting_exponent, after_exponent = False, True
        else:
            chain = 0
    return deepest


def _too_hostile(answer: str) -> bool:
    """Cheap checks that keep pathological inputs away from sympy."""
    return (
        len(answer) > MAX_ANSWER_CHARS
        or _nesting_depth(answer) > MAX_NESTING_DEPTH
        or _exponent_depth(answer) > MAX_EXPONENT_DEPTH
    )


def _plain_number(answer: str) -> Decimal | None:
    if not _PLAIN_NUMBER.fullmatch(answer):
        return None
    try:
        return Decimal(answer)
    except InvalidOperation:
        return None


# ----------------------------------------------------------------------------- worker


class VerifierError(RuntimeError):
    """The math-verify worker could not be started."""


class _MathVerifyWorker:
    """A child Python process running `_worker_main`.

    Protocol: one JSON line per batch, `[[predicted, reference], ...]`; the child answers
    one line per item, "1" or "0", in order, flushing after each so the parent can time
    items one by one.
    """

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from curriculum.verify import _worker_main; _worker_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal goes to the parent, which cleans up
        )
        self._buffer = b""
        ready = self.read_line(WORKER_START_TIMEOUT_S)
        if ready != "ready":
            self.kill()
            raise VerifierError(f"math-verify worker failed to start (got {ready!r}); is math-verify installed?")

    def send(self, pairs: Sequence[tuple[str, str]]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(pairs).encode("utf-8") + b"\n")
        self.process.stdin.flush()

    def read_line(self, timeout_s: float) -> str | None:
        """The next line from the child, or None if none arrives within timeout_s (or it died)."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # the child exited
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode("utf-8")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def _worker_main() -> None:
    """Child process loop: grade pairs with math-verify, its signal-based timeouts off."""
    import logging
    import resource
    from functools import lru_cache

    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    # A runaway sympy computation should hit MemoryError, not the machine's memory.
    limit = 4 * 1024**3
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError):
        pass
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # "timeout disabled" warning: we time it here
    configs = (LatexExtractionConfig(), ExprExtractionConfig())

    @lru_cache(maxsize=8192)
    def parsed(answer: str) -> list:
        # Boxing tells math-verify the whole string is the answer. Text with $-delimited math
        # goes to math-verify's own search first; stray $ are dropped if that finds nothing.
        if _MATH_DOLLAR.search(answer):
            return parse(answer, configs, parsing_timeout=None) or parse(
                "\\boxed{" + _MATH_DOLLAR.sub(" ", answer) + "}", configs, parsing_timeout=None
            )
        return parse("\\boxed{" + answer + "}", configs, parsing_timeout=None) or parse(
            answer, configs, parsing_timeout=None
        )

    def equal(predicted: str, reference: str) -> bool:
        try:
            gold = parsed(reference)
            target = parsed(predicted)
            return bool(gold and target and verify(gold, target, timeout_seconds=None))
        except BaseException as exc:  # noqa: BLE001 - MemoryError, RecursionError, sympy internals
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return False

    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        for predicted, reference in json.loads(line):
            # The parent kills a slow item after timeout_s; this CPU limit only matters if
            # the parent died mid-item and nobody is left to kill us (SIGXCPU ends the process).
            used = resource.getrusage(resource.RUSAGE_SELF)
            cpu_s = int(used.ru_utime + used.ru_stime) + ORPHAN_CPU_LIMIT_S
            try:
                resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, resource.RLIM_INFINITY))
            except (ValueError, OSError):
                pass
            out.write(b"1\n" if equal(predicted, reference) else b"0\n")
            out.flush()


# ----------------------------------------------------------------------------- verifier


class Verifier:
    """Grades answers; math-verify calls are bounded by `timeout_s` each.

    Thread-safe (one worker per Verifier, calls serialised) and picklable (the
    worker is not carried along; the copy starts its own on first need).
    """

    def __init__(self, timeout_s: float = 2.0) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._worker: _MathVerifyWorker | None = None
        self.timeouts = 0  # items graded False because their comparison ran past timeout_s or crashed the worker

    def __getstate__(self) -> dict:
        return {"timeout_s": self.timeout_s}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["timeout_s"])

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.kill()
                self._worker = None

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        worker = getattr(self, "_worker", None)
        if worker is not None:
            try:
                worker.kill()
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass

    # -- public API

    def equivalent(self, predicted: str | None, reference: str) -> bool:
        return self._equivalent_many([(predicted, reference)])[0]

    def grade(self, completion: str, reference: str, rule: Extraction = "auto") -> Grade:
        return self.grade_many([completion], [reference], rule)[0]

    def grade_many(
        self, completions: Sequence[str], references: Sequence[str], rule: Extraction = "auto"
    ) -> list[Grade]:
        if len(completions) != len(references):
            raise ValueError(f"grade_many got {len(completions)} completions but {len(references)} references")
        extracted = [extract_answer(text, rule) for text in completions]
        correct = self._equivalent_many(list(zip(extracted, references)))
        return [Grade(answer, ok) for answer, ok in zip(extracted, correct)]

    def math_verify_many(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """(predicted, reference) answers compared by math-verify alone, without the string and
        plain-number shortcuts (the guards still apply): to check how math-verify reads a data set."""
        return self._equivalent_many(list(pairs), shortcuts=False)

    # -- batch core

    def _equivalent_many(self, pairs: list[tuple[str | None, str]], shortcuts: bool = True) -> list[bool]:
        results: list[bool] = [False] * len(pairs)
        pending: dict[tuple[str, str], list[int]] = {}  # distinct pairs that need math-verify
        for index, (predicted, reference) in enumerate(pairs):
            if predicted is None:
                continue
            predicted, reference = clean_answer(predicted), clean_answer(reference)
            if not predicted or not reference:
                continue
            if shortcuts and predicted == reference:
                results[index] = True
                continue
            if _too_hostile(predicted) or _too_hostile(reference):
                continue
            if shortcuts:
                left, right = _plain_number(predicted), _plain_number(reference)
                if left is not None and right is not None:
                    results[index] = left == right
                    continue
            pending.setdefault((predicted, reference), []).append(index)
        if pending:
            distinct = list(pending)  # sampled attempts repeat answers: grade each pair once
            for pair, ok in zip(distinct, self._math_verify(distinct)):
                if ok is None:  # timed out: every item with this pair is graded wrong, and counted
                    self.timeouts += len(pending[pair])
                for index in pending[pair]:
                    results[index] = bool(ok)
        return results

    def _math_verify(self, pairs: list[tuple[str, str]]) -> list[bool | None]:
        """math-verify on distinct, guarded pairs, each bounded by timeout_s (None: it ran past it)."""
        results: list[bool | None] = []
        with self._lock:
            while len(results) < len(pairs):
                if self._worker is None:
                    self._worker = _MathVerifyWorker()
                worker = self._worker
                chunk = pairs[len(results) : len(results) + WORKER_CHUNK]
                try:
                    worker.send(chunk)
                except (BrokenPipeError, OSError):  # died between calls: start afresh
                    worker.kill()
                    self._worker = None
                    continue
                try:
                    for _ in chunk:
                        line = worker.read_line(self.timeout_s)
                        if line is None:  # too slow (or crashed): this item is wrong, restart for the rest
                            worker.kill()
                            self._worker = None
                            results.append(None)
                            break
                        results.append(line == "1")
                except BaseException:
                    # Interrupted mid-batch: the worker still owes lines that would answer the next call.
                    worker.kill()
                    self._worker = None
                    raise
        return results
