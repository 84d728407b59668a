"""The Verifier: grades completions against reference answers, plain numbers exactly and everything
else with math-verify in a worker process, each item bounded by `timeout_s`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from curriculum.verify.extract import clean_answer, extract_answer
from curriculum.verify.worker import (
    WORKER_CHUNK,
    _MathVerifyWorker,
    _plain_number,
    _too_hostile,
)

if TYPE_CHECKING:
    from curriculum.config import Extraction


@dataclass(frozen=True)
class Grade:
    extracted: str | None
    correct: bool


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
        Verifier.__init__(self, state["timeout_s"])

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
