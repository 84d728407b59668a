"""What every config section shares: frozen models that refuse unknown keys, the one-line ConfigError,
answer formats and band edges."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict

from curriculum.errors import CurriculumError

Extraction = Literal["auto", "boxed", "gsm8k", "answer_colon", "last_number", "none"]
# What real models are asked to do with their final answer (the papers' evaluation prompt).


# What real models are asked to do with their final answer (the papers' evaluation prompt).
BOXED_INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."


Mutation = Literal["harder", "easier", "sibling"]


def mutation_kinds(*kinds: Mutation) -> Callable[[], list[Mutation]]:
    """A default list of mutation kinds (a fresh list for each model)."""
    return lambda: list(kinds)


class ConfigError(CurriculumError, ValueError):
    """A config that cannot be used; the message is one line meant for the user."""


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def band_edge_error(value: float, attempts: int, name: str) -> str | None:
    """Why ``value`` is a bad band edge for ``attempts`` samples, or None.

    With k samples a solve-rate estimate is always c/k, so an edge between two
    multiples of 1/k silently means the next multiple; we make the user say it.
    """
    scaled = value * attempts
    if abs(scaled - round(scaled)) < 1e-9:
        return None
    below = Fraction(math.floor(scaled), attempts)
    above = Fraction(math.ceil(scaled), attempts)
    return (
        f"{name}={value} is not a multiple of 1/solver.attempts (attempts={attempts}): estimates are c/{attempts}, "
        f"use {float(below):g} or {float(above):g}"
    )
