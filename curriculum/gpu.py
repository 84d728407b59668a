"""What a role reports about its GPU: out-of-memory errors as one line naming the setting to
lower, and the peak memory it allocated (per round, logged to MLflow). Both work without CUDA
(nothing to report) and import torch only if the process already has."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from curriculum.errors import CurriculumError

# What CUDA out-of-memory errors say when they are not torch.OutOfMemoryError (cuBLAS, NCCL, vLLM).
_OOM_MESSAGES = ("CUDA out of memory", "CUDA error: out of memory")


class GPUOutOfMemory(CurriculumError):
    """A role ran out of GPU memory: the message names the setting that lowers its need."""


def is_out_of_memory(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")  # no torch imported: no CUDA error of torch's either
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return True
    return any(message in str(exc) for message in _OOM_MESSAGES)


@contextmanager
def out_of_memory_names(role: str, setting: str) -> Iterator[None]:
    """Turn a CUDA out-of-memory error raised inside into one `GPUOutOfMemory` line naming
    `setting`: the run ends with what to change, and a Ray actor's call is not sent again (the same
    call would run out of memory the same way; agents/proxy.py re-raises CurriculumErrors as they are)."""
    try:
        yield
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        said = " ".join(str(exc).split())[:200]  # torch's first sentences: how much it asked for, what was free
        raise GPUOutOfMemory(f"the {role} ran out of GPU memory ({said}); lower {setting}") from None


def take_peak_memory_gib() -> float:
    """The most GPU memory torch allocated in this process since the last call (GiB), then reset;
    0.0 without CUDA. A vLLM engine in processes of its own (solver.vllm.engine_process) is not counted."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return 0.0
    peak = torch.cuda.max_memory_allocated() / 2**30
    torch.cuda.reset_peak_memory_stats()
    return peak
