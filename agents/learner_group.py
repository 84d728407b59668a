"""A data-parallel Learner (`ray.learner.count = N > 1`): N worker actors in one torch.distributed
group, seen by the loop as ONE Learner role.

`LearnerGroup.call` sends `learn` and `restore` to every worker (their trainers step together; each
keeps its own copy of the adapter) and `publish` to rank 0 only (every copy is the same),
and answers with rank 0's result. The workers (curriculum/roles/learner.py `LearnerWorker`) are built
without a model; `join` tells them rank 0's address and a free port there, and they join the group and
load the model (curriculum/training/distributed.py).

A process group does not survive the loss of a member: when a worker dies (or a collective fails
because a peer did), every worker is restarted, the new processes join a new group, and the loop
restores their state (`on_restart`, as for a single actor, agents/proxy.py) before the call is sent
again. Before each call the group checks that no worker was restarted since it joined (Ray may have
restarted one between calls): the others would otherwise wait in a collective for a peer that never
comes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from agents.proxy import ActorRestarted, RayRole, method_name
from curriculum.errors import CurriculumError
from curriculum.faults import actor_kill
from curriculum.roles.api import LearnerRole
from curriculum.roles.learner import LearnerWorker
from curriculum.training.distributed import WorkerSpec

log = logging.getLogger(__name__)

R = TypeVar("R")
P = ParamSpec("P")

# Methods only rank 0 runs: every worker holds the same adapter, one copy is published.
RANK_ZERO = frozenset({"publish"})
# How long the other workers may still run after one failed before they count as stuck in a
# collective with a lost peer (gloo and NCCL notice a peer's death themselves, usually at once).
PEER_GRACE_S = 30.0
# How long a worker between calls may take to say which process it is.
PROBE_TIMEOUT_S = 10.0
BUSY, RESTARTING = "busy", "restarting"  # what `_probe` says of a worker that gave no incarnation


class PeerLost(RuntimeError):
    """A worker failed while its peers kept waiting in a collective: the group has to be rebuilt."""


class LearnerGroup:
    """N `LearnerWorker` actors (`workers`, rank order) behind the Learner role's one handle."""

    def __init__(self, workers: list[RayRole[LearnerWorker]], name: str = "learner", call_retries: int = 3) -> None:
        self.workers = workers
        self._name = name
        self.call_retries = call_retries
        self.on_restart: Callable[[LearnerGroup], None] | None = None
        self.restarts = 0
        self.restoring = False  # inside `on_restart`
        self.join()

    @property
    def name(self) -> str:
        return self._name

    def call(
        self, method: Callable[Concatenate[LearnerRole, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> GroupCall[R]:
        return GroupCall(self, method_name(method), args, kwargs)

    def submit(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """Send one call to the workers that run it (rank 0 first), after checking that none was restarted."""
        if self._restarted_since_join():
            log.warning("a %s worker was restarted since the group formed; restarting the group", self.name)
            self.recover()
        targets = self.workers[:1] if method in RANK_ZERO else self.workers
        return [worker.submit(method, args, kwargs) for worker in targets]

    def join(self) -> None:
        """Every worker joins one new process group whose rank 0 listens on its own node."""
        import ray

        # Sent as they are, not as RayCalls: a worker lost while the group forms fails the whole
        # join (`recover` starts over), never one worker's join sent again on its own.
        first = self.workers[0]
        host = ray.get(first.handle.node_ip.remote())
        port = ray.get(first.submit(method_name(LearnerWorker.free_port), (host,), {}))
        size = len(self.workers)
        joins = [
            worker.submit(method_name(LearnerWorker.join), (WorkerSpec(rank, size, host, port),), {})
            for rank, worker in enumerate(self.workers)
        ]
        ray.get(joins)

    def recover(self) -> None:
        """Restart every worker that is still in the old group (the others have been restarted by Ray
        already), join them into a new one and restore the loop's state; start over if one dies meanwhile."""
        from ray.exceptions import RayActorError, RayTaskError

        for attempt in range(self.call_retries + 1):
            self._restart_all()
            self.restarts += 1
            self.restoring = True
            try:
                self.join()
                if self.on_restart is not None:
                    self.on_restart(self)
                return
            except (RayActorError, ActorRestarted, PeerLost, RayTaskError) as exc:
                # (a peer lost while the group forms fails the others' join with a task error)
                if isinstance(exc, RayTaskError) and isinstance(exc.cause, CurriculumError):
                    raise exc.cause from None
                if attempt == self.call_retries:
                    raise
                log.warning("%s worker died while the group was rebuilt (%s); again", self.name, type(exc).__name__)
            finally:
                self.restoring = False

    def kill_last(self, when: str) -> None:
        """Fault injection: kill the last worker's process (Ray restarts it; the group notices)."""
        import ray

        log.warning("fault injection: killing the last %s worker %s", self.name, when)
        ray.kill(self.workers[-1].handle, no_restart=False)

    def _probe(self) -> list[str]:
        """Each worker's incarnation now, or BUSY (no answer in time: stuck in a collective) or
        RESTARTING (its process died; Ray is rebuilding it, or it is out of restarts)."""
        import ray
        from ray.exceptions import RayActorError

        probes = [worker.handle.current_incarnation.remote() for worker in self.workers]
        ready, _ = ray.wait(probes, num_returns=len(probes), timeout=PROBE_TIMEOUT_S)
        answers: list[str] = []
        for probe in probes:
            try:
                answers.append(str(ray.get(probe)) if probe in ready else BUSY)
            except RayActorError:
                answers.append(RESTARTING)
        return answers

    def _restarted_since_join(self) -> bool:
        # A busy worker is still the process that joined (the loop waits for each Learner call, so
        # none should be; a stuck collective is `GroupCall`'s to notice).
        return any(now not in (BUSY, worker.incarnation) for now, worker in zip(self._probe(), self.workers))

    def _restart_all(self) -> None:
        """Kill the workers still in the old group and wait until Ray has rebuilt every worker."""
        import ray

        old = [worker.incarnation for worker in self.workers]
        for now, worker in zip(self._probe(), self.workers):
            if now in (BUSY, worker.incarnation):  # in the old group, idle or stuck in a collective
                ray.kill(worker.handle, no_restart=False)
        for worker, before in zip(self.workers, old):
            deadline = time.monotonic() + worker.restart_timeout_s
            while True:
                worker.wait_until_restarted()  # raises when the worker is out of restarts
                if worker.incarnation != before:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} worker was not restarted within {worker.restart_timeout_s:g} s")
                time.sleep(0.2)


class GroupCall(Generic[R]):
    """A call sent to the group's workers; `result()` is rank 0's answer, once every worker has answered.

    If a worker dies (or its peers fail in a collective because it did), the group is rebuilt and
    restored (`LearnerGroup.recover`) and the call sent again, as a single actor's call is
    (agents/proxy.py `RayCall`).
    """

    def __init__(self, group: LearnerGroup, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.group, self.method, self.args, self.kwargs = group, method, args, kwargs
        self.refs = group.submit(method, args, kwargs)
        self.kill = actor_kill(group.name, method)  # test-only fault injection (curriculum/faults.py)
        if self.kill == "sent":
            group.kill_last(f"as {method} was sent")

    def result(self) -> R:
        from ray.exceptions import RayActorError

        resent = 0
        while True:
            try:
                return self._answers()
            except (RayActorError, ActorRestarted, PeerLost) as exc:
                if self.group.restoring or resent == self.group.call_retries:
                    raise
                log.warning(
                    "a %s worker was lost during %s (%s); restarting the group and sending the call again",
                    self.group.name,
                    self.method,
                    type(exc).__name__,
                )
            resent += 1
            self.group.recover()
            self.refs = self.group.submit(self.method, self.args, self.kwargs)

    def _answers(self) -> R:
        """Rank 0's answer once every worker has answered; the first failure, or `PeerLost` when the
        others are still waiting on the failed worker `PEER_GRACE_S` later. A worker's death wins over
        its peers' failures in the collective it left (the group is rebuilt)."""
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        pending, failure = list(self.refs), None
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=None if failure is None else PEER_GRACE_S)
            if not done:
                raise PeerLost(f"{self.group.name} workers are stuck after one failed in {self.method}: {failure}")
            try:
                ray.get(done[0])
            except (RayActorError, ActorRestarted):
                raise
            except RayTaskError as exc:
                if isinstance(exc.cause, CurriculumError):  # a user error, the same on every worker: its one line
                    raise exc.cause from None
                failure = failure or exc
        if failure is not None:
            raise failure
        value: R = ray.get(self.refs[0])
        if self.kill in ("done", "idle"):  # fault injection: a worker dies with the answer unread, or after it
            kill, self.kill = self.kill, None
            self.group.kill_last(f"after it ran {self.method}")
            if kill == "done":
                raise ActorRestarted(f"killed after it ran {self.method}")
        return value
