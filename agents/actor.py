"""One thin actor that hosts a role object and forwards calls to it."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import ray

log = logging.getLogger(__name__)


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
    """A pending call. If the actor dies before answering, `result()` waits for Ray to restart it,
    brings it back to the loop's state (`RayRole.on_restart`) and sends the same call again:
    every role call is safe to repeat (seeded sampling, content-derived store ids)."""

    def __init__(self, role: "RayRole", method: str, args: tuple, kwargs: dict):
        self.role, self.method, self.args, self.kwargs = role, method, args, kwargs
        self.ref = role.submit(method, args, kwargs)

    def result(self) -> Any:
        from ray.exceptions import RayActorError, RayTaskError

        from curriculum.errors import CurriculumError

        for retry in range(self.role.call_retries + 1):
            try:
                return ray.get(self.ref)
            except RayTaskError as exc:
                if isinstance(exc.cause, CurriculumError):  # a user error raised in the actor: its one line
                    raise exc.cause from None
                raise
            except RayActorError as exc:
                if retry == self.role.call_retries:
                    raise
                log.warning("%s actor died during %s (%s); restarting it and sending the call again",
                            self.role.name, self.method, type(exc).__name__)
                self.role.recover()
                self.ref = self.role.submit(self.method, self.args, self.kwargs)
        raise AssertionError("unreachable")


class RayRole:
    """The loop's view of an actor: `call(...)` returns at once, `.result()` waits.

    `on_restart(role)`, set by the runner, replays the calls that give a restarted actor (built
    afresh by its factory) the state the loop expects, e.g. the current policy version.
    """

    def __init__(self, handle: Any, name: str, call_retries: int = 3, restart_timeout_s: float = 600.0):
        self.handle = handle
        self.name = name
        self.call_retries = call_retries
        self.restart_timeout_s = restart_timeout_s
        self.on_restart: Callable[["RayRole"], None] | None = None
        self.restarts = 0

    def call(self, method: str, *args: Any, **kwargs: Any) -> RayCall:
        return RayCall(self, method, args, kwargs)

    def submit(self, method: str, args: tuple, kwargs: dict) -> Any:
        return self.handle.call.remote(method, *args, **kwargs)

    def recover(self) -> None:
        """Wait until Ray has restarted the actor (it answers `pid`), then restore its state."""
        from ray.exceptions import ActorDiedError, RayActorError

        deadline = time.monotonic() + self.restart_timeout_s
        while True:
            try:
                ray.get(self.handle.pid.remote(), timeout=max(1.0, deadline - time.monotonic()))
                break
            except ActorDiedError:
                raise  # out of restarts: nothing to wait for
            except (RayActorError, ray.exceptions.GetTimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self.restarts += 1
        if self.on_restart is not None:
            self.on_restart(self)
