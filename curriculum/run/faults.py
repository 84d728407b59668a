"""Test-only fault injection: kill this process with SIGKILL at a named point of a run.

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
"""

from __future__ import annotations

import os
import signal
import sys

KILL_ENV = "CURRICULUM_KILL_AT"


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
