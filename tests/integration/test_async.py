"""loop.mode=async end to end at minimal sizes: `curriculum run configs/tiny.yaml loop.mode=async` on a
local Ray cluster completes with round 2 sampled one version back; and a run SIGKILLed at points
around the attempts sampled ahead, then resumed, loses no committed record and stores none twice.

What async resume guarantees (run/loop.py): every record committed before a kill is in the final
store unchanged, no record is stored twice, and completed stages are read back (a round killed
after its attempt stage trains on the attempts it stored). It is not exact: attempts sampled ahead
are lost with the process and sampled again with the policy current at resume.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from curriculum.run.resume import compare_stores
from curriculum.store import Store

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import TINY_RUN_OVERRIDES  # noqa: E402

pytestmark = pytest.mark.integration

ASYNC = ["loop.mode=async"]
# In run order; each resume gets killed at the next point, the last resume finishes.
KILLS = [
    "learn:after-update@1",  # round 2 selected and sampled ahead with v0 (in memory), round 1's update unpublished
    "stage:attempt@2",  # round 2's selection (made ahead) committed, its attempts not: resume samples them with v1
    "commit:learn@2",  # round 2's learn done on the attempts its attempt stage stored and resume read back
]
KEYS = {"problems": "id", "attempts": "id", "pairs": "id", "policies": "version", "rounds": "round"}


@pytest.fixture(scope="module")
def async_run(tiny_config, tiny_base_model, tmp_path_factory) -> Path:
    """The session's tiny run in async mode, on a local Ray cluster (the base model from its cache)."""
    from curriculum.config import load_config
    from curriculum.run.runner import run_experiment

    tmp = tmp_path_factory.mktemp("async")
    config = load_config(
        ROOT / "configs/tiny.yaml",
        TINY_RUN_OVERRIDES
        + ASYNC
        + [f"experiment.runs_dir={tmp}", f"model.cache_dir={tiny_config.model.cache_dir}", "experiment.run_name=a"],
    )
    return run_experiment(config)


def test_async_run_completes_with_round_two_sampled_one_version_back(async_run):
    results = json.loads((async_run / "results.json").read_text())
    assert results["policy_version"] == 2
    with Store(async_run / "store.duckdb", read_only=True) as store:
        versions = {r: {a.policy_version for a in store.round_attempts(r)} for r in (1, 2)}
        metrics = {r: m for r, m in store.con.execute("SELECT round, metrics FROM rounds").fetchall()}
    assert versions == {1: {0}, 2: {0}}  # round 2 was sampled with v0 while round 1's Learner trained
    assert metrics[2]["attempt/policy_lag"] == 1 and metrics[1]["attempt/policy_lag"] == 0
    assert metrics[2]["learner/stale_groups_dropped"] == 0 and metrics[2]["learner/max_staleness_seen"] == 1

    from mlflow.tracking import MlflowClient

    tracking = json.loads((async_run / "mlflow.json").read_text())
    history = MlflowClient(tracking["tracking_uri"]).get_metric_history(
        tracking["run_id"], "learner/stale_groups_dropped"
    )
    assert sorted((m.step, m.value) for m in history) == [(1, 0.0), (2, 0.0)]


def curriculum(args: list[str], kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CURRICULUM_KILL_AT"}
    if kill_at:
        env["CURRICULUM_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "curriculum.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """An async run (every role in the driver: a kill takes it all down) killed at each of KILLS and
    resumed; a copy of its store after each kill."""
    tmp = tmp_path_factory.mktemp("async-kills")
    overrides = (
        TINY_RUN_OVERRIDES + ASYNC + ["ray.in_process=true", f"experiment.runs_dir={tmp}", f"model.cache_dir={tmp}"]
    )
    run_dir = tmp / "killed"
    outcomes, copies = [], []
    for i, point in enumerate(KILLS):
        args = (
            ["run", "configs/tiny.yaml", *overrides, "--run-dir", str(run_dir)] if i == 0 else ["resume", str(run_dir)]
        )
        outcomes.append(curriculum(args, kill_at=point).returncode)
        copies.append(_copy_store(run_dir, tmp / f"after-kill-{i}"))
    last = curriculum(["resume", str(run_dir)])
    assert last.returncode == 0, last.stderr[-3000:]
    return run_dir, outcomes, copies


def _copy_store(run_dir: Path, to: Path) -> Path:
    to.mkdir()
    for file in run_dir.glob("store.duckdb*"):  # the database and its write-ahead log
        shutil.copy(file, to / file.name)
    return to / "store.duckdb"


def test_every_kill_point_was_reached(killed_run):
    _, outcomes, _ = killed_run
    assert outcomes == [-signal.SIGKILL] * len(KILLS)


def test_no_committed_record_is_lost_or_changed_and_none_is_stored_twice(killed_run):
    run_dir, _, copies = killed_run
    for copy in copies:
        comparison = compare_stores(copy, run_dir / "store.duckdb")
        assert comparison.lost == comparison.differing == 0, comparison.details[:5]
    con = duckdb.connect(str(run_dir / "store.duckdb"), read_only=True)
    try:
        for table, key in KEYS.items():
            total, distinct = con.execute(f"SELECT count(*), count(DISTINCT {key}) FROM {table}").fetchone()
            assert total == distinct, f"{table}: {total - distinct} stored twice"
        # Each round's selected problems have solver.attempts=4 attempts of that round, of one version.
        records = con.execute("SELECT round, stage, state FROM stages WHERE stage = 'select'").fetchall()
        for round, _, state in records:
            ids = json.loads(state)["problem_ids"]
            rows = con.execute(
                "SELECT problem_id, count(*), count(DISTINCT policy_version) FROM attempts WHERE round = ? "
                "GROUP BY problem_id",
                [round],
            ).fetchall()
            assert {pid: (n, v) for pid, n, v in rows if pid in ids} == {pid: (4, 1) for pid in ids}, round
        versions = dict(
            con.execute("SELECT round, min(policy_version) FROM attempts WHERE round > 0 GROUP BY round").fetchall()
        )
        policies = [v for (v,) in con.execute("SELECT version FROM policies ORDER BY version").fetchall()]
    finally:
        con.close()
    # Round 2's attempts sampled ahead with v0 died with the second kill: resume sampled them with v1.
    assert versions == {1: 0, 2: 1} and policies == [1, 2]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["policy_version"] == 2
