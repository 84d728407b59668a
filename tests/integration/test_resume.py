"""Crash safety: a run SIGKILLed at several points and resumed each time ends exactly like an
uninterrupted run of the same seed.

Both runs go through the real CLI in subprocesses, with every role in the driver process
(`ray.in_process=true`), so the kill takes the whole run down at once, as a crash would.
The kill points come from `curriculum.faults` (CURRICULUM_KILL_AT). Everything on CPU here is
deterministic (seeded sampling, one thread), so records, adapters and evaluation numbers must
be identical, not merely close; only wall-clock timings may differ.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from curriculum.run.resume import compare_stores

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import TINY_RUN_OVERRIDES  # noqa: E402

pytestmark = pytest.mark.integration

# In run order; each resume gets killed at the next point, the last resume finishes.
KILLS = [
    "commit:attempt@1",  # attempts sampled and graded, not yet stored
    "learn:after-update@1",  # the Learner updated the adapter, nothing published
    "commit:snapshot@1",  # RoundStats stored and Parquet exported, the stage not committed
    "checkpoint:before-latest@1",  # during the checkpoint: LATEST.json not yet replaced
    "round:before-log@1",  # round 1 complete, its metrics not yet in MLflow
    "commit:distil@2",  # the Generator trained and saved v2, the stage not committed: back to v1
]


def curriculum(args: list[str], kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CURRICULUM_KILL_AT", None)
    if kill_at:
        env["CURRICULUM_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "curriculum.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    overrides = TINY_RUN_OVERRIDES + [
        "ray.in_process=true",
        "checkpoint.keep_last=1",  # resumes restore from the one version kept (after round 2: v2 only)
        f"experiment.runs_dir={tmp / 'runs'}",
        f"model.cache_dir={tmp / 'cache'}",
    ]
    reference, killed = tmp / "reference", tmp / "killed"
    done = curriculum(["run", "configs/tiny.yaml", *overrides, "--run-dir", str(reference)])
    assert done.returncode == 0, done.stderr[-3000:]

    outcomes = []
    first = curriculum(["run", "configs/tiny.yaml", *overrides, "--run-dir", str(killed)], kill_at=KILLS[0])
    outcomes.append(first.returncode)
    run_id = json.loads((killed / "mlflow.json").read_text())["run_id"]
    for point in KILLS[1:]:
        outcomes.append(curriculum(["resume", str(killed)], kill_at=point).returncode)
    last = curriculum(["resume", str(killed)])
    assert last.returncode == 0, last.stderr[-3000:]
    return reference, killed, outcomes, run_id


def test_every_kill_point_was_reached(runs):
    _, _, outcomes, _ = runs
    assert outcomes == [-signal.SIGKILL] * len(KILLS)


def test_store_has_no_lost_duplicated_or_changed_record(runs):
    reference, killed, _, _ = runs
    comparison = compare_stores(reference / "store.duckdb", killed / "store.duckdb")
    assert comparison.compared > 50  # problems, attempts, pairs, policies, rounds of two small rounds
    assert comparison.equal, comparison.details[:10]


def test_adapters_and_evaluation_are_identical(runs):
    reference, killed, _, _ = runs
    for run in (reference, killed):  # checkpoint.keep_last=1: v1 went at the end of round 2
        assert sorted(p.name for p in (run / "checkpoints").glob("policy_v*")) == ["policy_v0002"]
        assert (run / "checkpoints/policy_v0002/optimizer.pt").is_file()
    name = "checkpoints/policy_v0002/adapter_model.safetensors"
    assert (reference / name).read_bytes() == (killed / name).read_bytes(), name
    ref, got = (json.loads((d / "results.json").read_text()) for d in (reference, killed))
    assert got["final_eval"] == ref["final_eval"] and got["policy_version"] == ref["policy_version"] == 2
    latest = json.loads((killed / "checkpoints/LATEST.json").read_text())
    assert latest["round"] == 2 and latest["policy_version"] == 2


def test_snapshots_hold_every_row_once_after_the_resumes(runs):
    """The snapshot stage killed before its commit writes its round again on resume: no row twice."""
    from curriculum.report.summary import open_snapshot
    from curriculum.store import schema

    counts = []
    for run in runs[:2]:
        con, name = open_snapshot(run)
        assert name == "round_0002"
        counts.append(
            {
                t.name: con.execute(f"SELECT count(*), count(DISTINCT {t.key}) FROM {t.name}").fetchone()
                for t in schema.TABLES
            }
        )
        con.close()
    assert counts[0] == counts[1] and all(n == distinct for n, distinct in counts[1].values())
    assert counts[1]["attempts"][0] > 0


def test_mlflow_run_continues_with_each_step_logged_once(runs):
    from mlflow.tracking import MlflowClient

    reference, killed, _, run_id = runs
    tracking = json.loads((killed / "mlflow.json").read_text())
    assert tracking["run_id"] == run_id  # the resumes continued the run the first process created
    client = MlflowClient(tracking_uri=tracking["tracking_uri"])
    assert client.get_run(run_id).info.status == "FINISHED"
    ref_id = json.loads((reference / "mlflow.json").read_text())["run_id"]
    for key in ("policy_version", "eval/accuracy", "learner/loss", "selected", "seeds/seeds"):
        got = sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        want = sorted((m.step, m.value) for m in client.get_metric_history(ref_id, key))
        assert got == want, key
    assert [m.step for m in client.get_metric_history(run_id, "policy_version")] == [0, 1, 2]
    logged = {a.path for a in client.list_artifacts(run_id, "snapshots")}
    assert {"snapshots/manifest.json", "snapshots/attempts"} <= logged  # what open_snapshot reads


def test_run_refuses_an_existing_run_directory_and_points_to_resume(runs, tmp_path):
    _, killed, _, _ = runs
    before = sorted(str(p) for p in killed.rglob("*"))
    result = curriculum(["run", "configs/tiny.yaml", *TINY_RUN_OVERRIDES, "--run-dir", str(killed)])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: run directory {killed} already exists (resume it with `curriculum resume {killed}`); "
        "or pick another experiment.run_name / --run-dir"
    ]
    assert sorted(str(p) for p in killed.rglob("*")) == before
