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

from curriculum.verify.extract import MAX_ANSWER_CHARS, answer_line, clean_answer, extract_answer, solution_in_format
from curriculum.verify.verifier import Grade, Verifier
from curriculum.verify.worker import VerifierError

__all__ = [
    "MAX_ANSWER_CHARS",
    "Grade",
    "Verifier",
    "VerifierError",
    "answer_line",
    "clean_answer",
    "extract_answer",
    "solution_in_format",
]
