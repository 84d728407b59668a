"""The one generic proxy that reaches a role object, in this process (`LocalRole`) or in a Ray actor
(`RayRole`, hosted by the thin `RoleActor`); the only place a role method travels as its name.

Both implement `curriculum.roles.api.Role[T]`: `role.call(SolverRole.attempt, problems, round, seed)`
is checked by the type checker against the role's Protocol and returns a pending call whose
`.result()` waits. An argument that is itself a pending call is handed over as its value (a Ray
actor gets it from the object store, not through the driver).

A role actor that dies is rebuilt by Ray from its factory (`max_restarts`), i.e. with the
state it had when the run started. Whether it died during a call (the call fails) or between
two calls (Ray queues the next call for the rebuilt actor, which would run it silently), the
loop must give it its state back first: every actor has an `incarnation` (a fresh id per
process) and refuses a call addressed to an earlier one, so a restart is always noticed and
`RayRole.recover` restores the actor before the call is sent again.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from curriculum.errors import CurriculumError
from curriculum.faults import actor_kill

log = logging.getLogger(__name__)

R = TypeVar("R")
T = TypeVar("T")
P = ParamSpec("P")


def method_name(method: Callable[..., object]) -> str:
    """The name a role method is sent by: the one place the project turns a method into a string."""
    return method.__name__


class ActorRestarted(RuntimeError):
    """A call addressed to an actor process that has since died and been rebuilt by Ray."""


# ----------------------------------------------------------------------------- in this process


class Done(Generic[R]):
    """A call that has run in this process (an error was raised by `call` itself)."""

    def __init__(self, value: R) -> None:
        self.value = value

    def result(self) -> R:
        return self.value


class LocalRole(Generic[T]):
    """Runs calls on a plain object in this process (`ray.in_process`, tests, debugging)."""

    def __init__(self, target: T, name: str = "role") -> None:
        self.target = target
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def call(self, method: Callable[Concatenate[T, P], R], /, *args: P.args, **kwargs: P.kwargs) -> Done[R]:
        values = tuple(arg.result() if isinstance(arg, Done) else arg for arg in args)
        bound: Callable[..., R] = getattr(self.target, method_name(method))
        return Done(bound(*values, **kwargs))


# ----------------------------------------------------------------------------- in a Ray actor


def _set_torch_threads(threads: int) -> None:
    """torch's thread count, if this process has imported torch (the store never does: it starts
    faster without) and the count differs."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


class RoleActor:
    """The thin actor (made remote with `ray.remote` where it is placed, agents/cluster.py): builds
    the role object from its factory and runs the calls sent to it."""

    def __init__(self, factory: Callable[[], object], threads: int) -> None:
        self.incarnation = uuid.uuid4().hex
        # Stages run one after another, so a role may use the cores it was given. Set before the role
        # is built: vLLM's CPU backend fixes torch's thread count when it starts (later calls to
        # torch.set_num_threads are ignored), and Ray has set OMP_NUM_THREADS to this actor's whole
        # CPUs (1 for a fractional share), which torch reads when it is first imported.
        os.environ["OMP_NUM_THREADS"] = str(threads)
        _set_torch_threads(threads)
        self.failed: CurriculumError | None = None
        self.target: Any = None
        try:
            self.target = factory()
        except CurriculumError as exc:  # a user error (a path missing on this node): every call answers it, and
            self.failed = exc  # Ray does not rebuild the actor again and again as it would after a crash
        _set_torch_threads(threads)
        self.busy: dict[str, float] = {}  # seconds spent inside each role method (for bench/overhead.py)
        self.calls: dict[str, int] = {}  # calls of each role method (round trips, bench/overhead.py)

    def call(self, incarnation: str, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.failed is not None:
            raise self.failed
        if incarnation != self.incarnation:
            raise ActorRestarted(f"{method} was sent to incarnation {incarnation}; this is {self.incarnation}")
        start = time.perf_counter()
        try:
            return getattr(self.target, method)(*args, **kwargs)
        finally:
            self.busy[method] = self.busy.get(method, 0.0) + time.perf_counter() - start
            self.calls[method] = self.calls.get(method, 0) + 1

    def current_incarnation(self) -> str:
        if self.failed is not None:
            raise self.failed
        return self.incarnation

    def busy_seconds(self) -> dict[str, float]:
        """Seconds spent in role methods since the last call of this method."""
        busy, self.busy = self.busy, {}
        return busy

    def call_counts(self) -> dict[str, int]:
        """Calls of each role method since the last call of this method."""
        calls, self.calls = self.calls, {}
        return calls

    def pid(self) -> int:
        return os.getpid()

    def node_ip(self) -> str:
        """The address of this actor's node (where a Learner worker of rank 0 listens for the others)."""
        import ray

        return str(ray.util.get_node_ip_address())


@functools.cache
def role_actor() -> Any:
    """`RoleActor` as a Ray actor class (Ray is imported on first use, never by in-process runs)."""
    import ray

    return ray.remote(RoleActor)


class RayCall(Generic[R]):
    """A pending call. If the actor dies before answering, or had died and been rebuilt before
    the call reached it, `result()` waits for Ray to restart it, brings it back to the loop's
    state (`RayRole.recover`) and sends the same call again: every role call is safe to send
    again to an actor restored to the state it was sent in (seeded sampling, content-derived
    store ids, a Learner's unpublished update made again)."""

    def __init__(self, role: RayRole[Any], method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.role, self.method, self.args, self.kwargs = role, method, args, kwargs
        self.ref = role.submit(method, args, kwargs)
        self.kill = actor_kill(role.name, method)  # test-only fault injection (curriculum/faults.py)
        if self.kill == "sent":
            role.kill(f"as {method} was sent")

    def _answer(self) -> R:
        import ray

        if self.kill == "done":  # fault injection: the actor dies with its answer unread
            self.kill = None
            ray.wait([self.ref])
            self.role.kill(f"after it ran {self.method}")
            raise ActorRestarted(f"killed after it ran {self.method}")
        value: R = ray.get(self.ref)
        if self.kill == "idle":  # fault injection: the next call finds a restarted actor
            self.kill = None
            self.role.kill(f"after it answered {self.method}")
        return value

    def result(self) -> R:
        from ray.exceptions import RayActorError, RayTaskError

        resent = 0
        while True:
            try:
                return self._answer()
            except (
                RayActorError,
                ActorRestarted,
            ) as exc:  # (Ray's error for an ActorRestarted raised in the actor is one)
                # A call that restores the actor fails its restore, which starts over (`recover`).
                if self.role.restoring or resent == self.role.call_retries:
                    raise
                log.warning(
                    "%s actor died before answering %s (%s); restarting it and sending the call again",
                    self.role.name,
                    self.method,
                    type(exc).__name__,
                )
            except RayTaskError as exc:
                if isinstance(exc.cause, CurriculumError):  # a user error raised in the actor: its one line
                    raise exc.cause from None
                raise
            resent += 1
            self.role.recover()
            self.ref = self.role.submit(self.method, self.args, self.kwargs)


class RayRole(Generic[T]):
    """A role object hosted by a `RoleActor`: `call(...)` returns at once, `.result()` waits.

    `on_restart(role)`, set by the runner, replays the calls that give a restarted actor (built
    afresh by its factory) the state the loop expects, e.g. the current policy version.
    """

    def __init__(self, handle: Any, name: str, call_retries: int = 3, restart_timeout_s: float = 600.0) -> None:
        self.handle = handle
        self._name = name
        self.call_retries = call_retries
        self.restart_timeout_s = restart_timeout_s
        self.on_restart: Callable[[RayRole[T]], None] | None = None
        self.restarts = 0
        self.restoring = False  # inside `on_restart`
        # The actor process calls are meant for, learnt at the first call: an actor rebuilt before
        # it starts from the state the loop expects of a new one.
        self.incarnation: str | None = None

    @property
    def name(self) -> str:
        return self._name

    def call(self, method: Callable[Concatenate[T, P], R], /, *args: P.args, **kwargs: P.kwargs) -> RayCall[R]:
        return RayCall(self, method_name(method), args, kwargs)

    def ready(self) -> None:
        """Wait until the actor has built its role; a role that cannot be built on its node (a path
        missing there) raises its one-line error."""
        import ray
        from ray.exceptions import RayTaskError

        try:
            self.incarnation = ray.get(self.handle.current_incarnation.remote())
        except RayTaskError as exc:
            if isinstance(exc.cause, CurriculumError):
                raise exc.cause from None
            raise

    def submit(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.incarnation is None:
            self.ready()
        # The pending result of another actor's call goes as its ObjectRef: Ray hands the actor the
        # value, moved through the object store (to another node if need be), not through the driver.
        args = tuple(arg.ref if isinstance(arg, RayCall) else arg for arg in args)
        return self.handle.call.remote(self.incarnation, method, *args, **kwargs)

    def kill(self, when: str) -> None:
        """Fault injection: kill the actor process and wait until Ray has rebuilt it (the loop
        still addresses the old one, so its next call finds it restarted)."""
        import ray
        from ray.exceptions import RayActorError

        log.warning("fault injection: killing the %s actor %s", self.name, when)
        killed = self.incarnation
        ray.kill(self.handle, no_restart=False)
        deadline = time.monotonic() + self.restart_timeout_s
        while time.monotonic() < deadline:
            try:
                if ray.get(self.handle.current_incarnation.remote(), timeout=10.0) != killed:
                    return
            except (RayActorError, ray.exceptions.GetTimeoutError):
                pass
            time.sleep(0.1)

    def recover(self) -> None:
        """Wait until Ray has restarted the actor (it answers), then restore its state. If it dies
        again while being restored, wait and restore it from the start again: a restore replayed
        half on one process and half on the next would leave a state the loop never had."""
        from ray.exceptions import RayActorError

        for attempt in range(self.call_retries + 1):
            self.wait_until_restarted()
            self.restarts += 1
            if self.on_restart is None:
                return
            self.restoring = True
            try:
                self.on_restart(self)
                return
            except (RayActorError, ActorRestarted) as exc:
                if attempt == self.call_retries:
                    raise
                log.warning(
                    "%s actor died while being restored (%s); restoring it again", self.name, type(exc).__name__
                )
            finally:
                self.restoring = False

    def wait_until_restarted(self) -> None:
        import ray
        from ray.exceptions import ActorDiedError, RayActorError

        deadline = time.monotonic() + self.restart_timeout_s
        while True:
            try:
                self.incarnation = ray.get(
                    self.handle.current_incarnation.remote(), timeout=max(1.0, deadline - time.monotonic())
                )
                return
            except ActorDiedError:
                raise  # out of restarts: nothing to wait for
            except (RayActorError, ray.exceptions.GetTimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
