"""One thin actor that hosts a role object and forwards calls to it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import ray


@ray.remote
class RoleActor:
    def __init__(self, factory: Callable[[], Any], threads: int):
        import torch

        # Stages run one after another, so a role may use the cores it was given.
        torch.set_num_threads(threads)
        self.target = factory()
        self.busy: dict[str, float] = {}  # seconds spent inside each role method (for bench/overhead.py)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return getattr(self.target, method)(*args, **kwargs)
        finally:
            self.busy[method] = self.busy.get(method, 0.0) + time.perf_counter() - start

    def busy_seconds(self) -> dict[str, float]:
        """Seconds spent in role methods since the last call of this method."""
        busy, self.busy = self.busy, {}
        return busy

    def pid(self) -> int:
        return os.getpid()


class RayCall:
    def __init__(self, ref: Any):
        self.ref = ref

    def result(self) -> Any:
        return ray.get(self.ref)


class RayRole:
    """The loop's view of an actor: `call(...)` returns at once, `.result()` waits."""

    def __init__(self, handle: Any, name: str):
        self.handle = handle
        self.name = name

    def call(self, method: str, *args: Any, **kwargs: Any) -> RayCall:
        return RayCall(self.handle.call.remote(method, *args, **kwargs))
