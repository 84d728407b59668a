"""Each kind of role actor (store, solver, teacher, learner, generator) killed with `ray.kill`
in a representative set of its methods and phases: Ray restarts it, the loop gives it its state
back and sends the call again, and the run ends exactly as an uninterrupted one
(tests/integration/actor_kills.py; every method in every phase: tests/slow/test_actor_kill_matrix.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ray")
import actor_kills  # noqa: E402

from agents import cluster  # noqa: E402
from curriculum.run import code_version  # noqa: E402

pytestmark = pytest.mark.integration

KILLS = [
    "store.append#3:done",
    "store.read_with#1:sent",
    "solver.attempt#2:done",
    "solver.load_policy#2:idle",
    "teacher.teach#1:sent",
    "learner.learn#1:idle",  # dies between its update and the publish: the update is made again
    "learner.publish#2:done",  # dies after publishing: publishing again must not publish the old weights
    "generator.train#1:done",
    "generator.propose#1:idle",
]


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A local cluster whose workers run a pinned copy of the code, as a run's do."""
    pinned = tmp_path_factory.mktemp("pinned")
    code_version.pin(pinned)
    actor_kills.start_ray(code_version.snapshot_dir(pinned))
    yield code_version.snapshot_dir(pinned)
    cluster.stop_ray()


def test_workers_import_the_run_s_copy_of_the_code(local_ray):
    import ray

    @ray.remote
    def imported_from() -> list[str]:
        import agents.proxy
        import curriculum.run.loop

        return [curriculum.run.loop.__file__, agents.proxy.__file__]

    files = ray.get(imported_from.remote())
    # Ray unpacks the run's code/ folder as the workers' working_dir: not the checkout they were launched from.
    assert all("working_dir_files" in path and not path.startswith(str(actor_kills.ROOT)) for path in files), files
    assert [Path(f).read_bytes() for f in files] == [
        (local_ray / "curriculum/run/loop.py").read_bytes(),
        (local_ray / "agents/proxy.py").read_bytes(),
    ]


def test_killed_actors_are_restarted_restored_and_the_run_is_unchanged(local_ray, tmp_path):
    reference = actor_kills.run(tmp_path / "reference")[0]
    reports, restarts = actor_kills.run(tmp_path / "killed", KILLS)
    assert all(restarts[role] >= 1 for role in actor_kills.ROLES)
    actor_kills.assert_same_run(tmp_path / "killed", reports, tmp_path / "reference", reference)
