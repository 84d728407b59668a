"""Every role actor killed (`ray.kill`) in every method the loop calls on it, in each of the three
phases (as the call is sent, after it ran, after it answered), and the run ends exactly as an
uninterrupted one: first with the scripted stateful roles of tests/integration/actor_kills.py
(every method x phase), then with the real models through `curriculum run` on local Ray (every
method once).

Minutes on a laptop CPU (each kill restarts an actor): `pytest -m slow tests/slow/test_actor_kill_matrix.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import actor_kills  # noqa: E402
from conftest import TINY_RUN_OVERRIDES  # noqa: E402

from agents import cluster  # noqa: E402
from curriculum import faults  # noqa: E402
from curriculum.run.resume import compare_stores  # noqa: E402

pytestmark = pytest.mark.slow
PHASES = ("sent", "done", "idle")


def matrix() -> list[list[str]]:
    """Every (role, method, phase), spread over the calls of each method and over three runs (one
    per phase), so that each run kills each method once. A restore is called only to restore a
    restarted actor: the Learner's after a kill in round 2 (once it holds a published version)."""
    runs = []
    for index, phase in enumerate(PHASES):
        kills = [
            f"{role}.{method}#{1 + index % calls}:{phase}"
            for role, methods in actor_kills.METHODS.items()
            for method, calls in methods.items()
            if method != "restore"
            and not (role == "learner" and method == "publish")
            and not (phase == "idle" and method == "close")
        ]  # nothing calls the store after its close
        kills += [f"learner.publish#2:{phase}", f"learner.restore#1:{phase}", f"generator.restore#1:{phase}"]
        runs.append(kills)
    return runs


@pytest.fixture(scope="module")
def local_ray():
    actor_kills.start_ray()
    yield
    cluster.stop_ray()


@pytest.mark.parametrize("phase", PHASES)
def test_every_method_of_every_role_killed(local_ray, tmp_path, phase):
    kills = matrix()[PHASES.index(phase)]
    reference = actor_kills.run(tmp_path / "reference")[0]
    reports, _ = actor_kills.run(tmp_path / "killed", kills)
    actor_kills.assert_same_run(tmp_path / "killed", reports, tmp_path / "reference", reference)


REAL_KILLS = faults.EVERY_ACTOR_METHOD  # each real role, in one `curriculum run`


def curriculum(args, kills=()):
    env = {k: v for k, v in os.environ.items() if k != "CURRICULUM_KILL_ACTOR"}
    if kills:
        env["CURRICULUM_KILL_ACTOR"] = ",".join(kills)
    return subprocess.run(
        [sys.executable, "-m", "curriculum.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600
    )


def test_real_roles_killed_in_every_method_end_like_an_uninterrupted_run(tmp_path):
    common = [
        "run",
        "configs/tiny.yaml",
        *TINY_RUN_OVERRIDES,
        "ray.max_restarts=16",
        f"experiment.runs_dir={tmp_path / 'runs'}",
        f"model.cache_dir={tmp_path / 'cache'}",
    ]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    done = curriculum([*common, "--run-dir", str(reference)])
    assert done.returncode == 0, done.stderr[-3000:]
    done = curriculum([*common, "--run-dir", str(killed)], REAL_KILLS)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("fault injection: killing the") == len(REAL_KILLS)

    comparison = compare_stores(reference / "store.duckdb", killed / "store.duckdb")
    assert comparison.equal, comparison.details[:10]
    assert comparison.compared > 50
    for version in (1, 2):
        name = f"checkpoints/policy_v{version:04d}/adapter_model.safetensors"
        assert (reference / name).read_bytes() == (killed / name).read_bytes(), name
    ref, got = (json.loads((d / "results.json").read_text()) for d in (reference, killed))
    assert got["final_eval"] == ref["final_eval"] and got["policy_version"] == ref["policy_version"] == 2
