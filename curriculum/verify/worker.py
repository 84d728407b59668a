"""The math-verify worker process: equivalence checks that may hang run there, bounded by the parent
(verifier.py); and the cheap guards an answer passes before it may reach math-verify.

math-verify's own timeouts use `signal.alarm`, which only works on the main thread, so they are off
here and the parent kills and restarts a worker whose item runs past its time.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

from curriculum.verify.extract import _MATH_DOLLAR, _PLAIN_NUMBER, MAX_ANSWER_CHARS

# Guards applied before an answer reaches math-verify (and MAX_ANSWER_CHARS, extract.py).
MAX_NESTING_DEPTH = 20  # {, (, [ nested deeper than this is not a real answer
MAX_EXPONENT_DEPTH = 2  # a^{b^{c}} is fine; a^{b^{c^{d}}} and deeper can explode sympy
WORKER_START_TIMEOUT_S = 120.0  # importing sympy on a busy 2-core machine can take a while
WORKER_CHUNK = 256  # pairs per message, so decoding a message never eats into an item's time budget
ORPHAN_CPU_LIMIT_S = 60  # CPU seconds per item before a worker whose parent is gone ends itself


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


class VerifierError(RuntimeError):
    """The math-verify worker could not be started."""


class _MathVerifyWorker:
    """A child Python process running `worker_main`.

    Protocol: one JSON line per batch, `[[predicted, reference], ...]`; the child answers
    one line per item, "1" or "0", in order, flushing after each so the parent can time
    items one by one.
    """

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from curriculum.verify.worker import worker_main; worker_main()"],
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


def worker_main() -> None:
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
