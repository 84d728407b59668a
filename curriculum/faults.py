"""Test-only fault injection: kill this process with SIGKILL at a named point of a run, or
kill one of the run's Ray actors (`ray.kill`) around one of its calls.

Set ``CURRICULUM_KILL_AT`` to a comma-separated list of ``point`` or ``point@round``
(e.g. ``commit:learn@2``) and the process kills itself, without any cleanup, the
first time it reaches a matching point. The kill tests and ``bench/reliability.py``
use it to check that `curriculum resume` recovers from a crash at that exact place.
Unset (the normal case) it costs one dictionary lookup per point.

Points (``<stage>`` is a name in ``loop.STAGES`` or ``seed``):

- ``stage:<stage>``: a stage begins; nothing of it has run.
- ``commit:<stage>``: a stage's work is done (attempts sampled, adapter published,
  snapshot exported...) but its records and completion marker are not committed.
- ``learn:after-update``: the Learner has updated the policy but not published it.
- ``checkpoint:before-latest``: checkpoint files written, the LATEST pointer not yet.
- ``round:before-log``: a round is complete but its metrics are not yet in MLflow.

Set ``CURRICULUM_KILL_ACTOR`` to a comma-separated list of ``<role>.<method>[#n][:when]``
(e.g. ``learner.publish#2:sent,store.append#5``) and the driver kills that role's actor with
``ray.kill`` (Ray restarts it) at the n-th call (default 1) of that method it sends, counted
over the role's actors and including the calls that restore a restarted actor; each item fires
once. ``when``:

- ``sent``: as soon as the call is sent: the actor dies before or while running it.
- ``done`` (default): once it has run the call: its answer is lost with it.
- ``idle``: after its answer is read: the next call finds a restarted actor.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter

KILL_ENV = "CURRICULUM_KILL_AT"
ACTOR_KILL_ENV = "CURRICULUM_KILL_ACTOR"
ACTOR_KILL_WHEN = ("sent", "done", "idle")
# Every method the loop calls on each kind of actor in one run of configs/tiny.yaml at test sizes
# (`#n`: the n-th call of the run), at each moment: the actor-kill matrix of tests and bench.
EVERY_ACTOR_METHOD = [
    "store.stage_records#1:done",
    "store.problems#1:idle",
    "store.solve_rates#2:done",
    "store.problems_by_query#1:sent",
    "store.get_problems#1:sent",
    "store.problem_ids#2:done",
    "store.append#4:sent",
    "store.append#9:done",
    "store.read_with#1:done",
    "store.problem_counts_by_source#1:idle",
    "store.close#1:done",
    "solver.attempt#2:done",
    "solver.load_policy#1:idle",
    "solver.evaluate#1:sent",
    "teacher.teach#1:done",
    "learner.learn#1:idle",
    "learner.publish#1:done",
    "learner.publish#2:sent",
    "learner.restore#1:done",
    "generator.train#1:done",
    "generator.propose#1:idle",
    "generator.restore#1:done",
]
_actor_calls: Counter[str] = Counter()  # calls sent per <role>.<method> in this process
_fired: set[str] = set()


def kill_point(point: str, round: int | None = None) -> None:
    """SIGKILL this process if ``CURRICULUM_KILL_AT`` names ``point`` (at ``round``, if given there)."""
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    for item in wanted.split(","):
        name, _, at = item.strip().partition("@")
        if name == point and (not at or (round is not None and int(at) == round)):
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def actor_kill(role: str, method: str) -> str | None:
    """When ``CURRICULUM_KILL_ACTOR`` names this call (the driver is about to send `method` to a
    `role` actor): "sent", "done" or "idle" (see the module docstring); else None."""
    wanted = os.environ.get(ACTOR_KILL_ENV)
    if not wanted:
        return None
    key = f"{role}.{method}"
    _actor_calls[key] += 1
    for item in (part.strip() for part in wanted.split(",")):
        target, _, when = item.partition(":")
        name, _, nth = target.partition("#")
        when = when or "done"
        if when not in ACTOR_KILL_WHEN:
            raise ValueError(f"{ACTOR_KILL_ENV}: '{item}': when must be one of {', '.join(ACTOR_KILL_WHEN)}")
        if name == key and int(nth or 1) == _actor_calls[key] and item not in _fired:
            _fired.add(item)
            return when
    return None


def actor_kills_fired() -> list[str]:
    """The ``CURRICULUM_KILL_ACTOR`` items that have fired in this process."""
    return sorted(_fired)


def reset_actor_kills() -> None:
    """Forget the calls counted and the kills fired (a test running several runs in one process)."""
    _actor_calls.clear()
    _fired.clear()
