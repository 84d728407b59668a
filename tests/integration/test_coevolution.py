"""Two rounds of the Socratic-Zero recipe on a local Ray cluster, at minimal sizes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from curriculum.evaluation import EvalResult
from curriculum.store import Store

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run_dir(tiny_run_dir):
    """The session's shared run (tests/conftest.py): TINY_RUN_OVERRIDES, run name `it`."""
    return tiny_run_dir


def test_policy_advanced_and_lora_weights_changed(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    assert results["policy_version"] == 2
    v1 = load_file(run_dir / "checkpoints/policy_v0001/adapter_model.safetensors")
    v2 = load_file(run_dir / "checkpoints/policy_v0002/adapter_model.safetensors")
    lora_b = [k for k in v2 if "lora_B" in k]
    assert lora_b, "the adapter holds no LoRA B matrices"
    assert all(v2[k].abs().sum() > 0 for k in lora_b)  # B starts at zero: nonzero means it trained
    assert any(not (v1[k] == v2[k]).all() for k in v2)  # round 2 moved the weights again


def test_lineage_and_references_hold(run_dir):
    with Store(run_dir / "store.duckdb", read_only=True) as store:
        problems = {p.id: p for p in store.problems()}
        derived = [p for p in problems.values() if p.source in ("teacher", "generator")]
        assert derived, "the Teacher wrote no problem"
        for problem in derived:
            assert problem.parent_id in problems
            chain = store.ancestors(problem.id)
            assert chain and chain[-1].source == "seed", f"{problem.id} does not reach a seed"
        versions = {0} | {row[0] for row in store.con.execute("SELECT version FROM policies").fetchall()}
        orphans = store.con.execute(
            "SELECT count(*) FROM attempts WHERE problem_id NOT IN (SELECT id FROM problems)"
        ).fetchone()[0]
        assert orphans == 0
        used = {row[0] for row in store.con.execute("SELECT DISTINCT policy_version FROM attempts").fetchall()}
        assert used <= versions and used >= {0, 1}
        counts = store.counts()
    summary = json.loads(
        subprocess.run(
            [sys.executable, "-m", "curriculum.cli", "inspect", str(run_dir), "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert summary["store"] == {k: counts[k] for k in ("problems", "attempts", "pairs", "rejected", "calls")}
    assert [r["round"] for r in summary["rounds"]] == [1, 2]
    assert [r["policy_version"] for r in summary["rounds"]] == [1, 2]
    assert set(summary["rounds"][0]["eval"]["by_level"]) == {"1", "2", "3"}
    # retention: each level's points lost since the base, the round's worst and the worst so far
    results = json.loads((run_dir / "results.json").read_text())
    base = EvalResult.from_dict(results["base_eval"]).by_level
    for r in summary["rounds"]:
        assert set(r["drop_from_base"]) == {"L1", "L2", "L3"}
        assert r["worst_drop"] == max(r["drop_from_base"].values())
        assert r["drop_from_base"]["L1"] == pytest.approx(100 * (base[1] - r["eval"]["by_level"]["1"]))
    assert summary["rounds"][1]["worst_drop_so_far"] == max(r["worst_drop"] for r in summary["rounds"])


def test_mlflow_has_per_round_metrics(run_dir):
    from mlflow.tracking import MlflowClient

    tracking = json.loads((run_dir / "mlflow.json").read_text())
    client = MlflowClient(tracking_uri=tracking["tracking_uri"])
    run = client.get_run(tracking["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["solver.attempts"] == "4"
    for metric in ("eval/accuracy", "eval/level_3/accuracy", "policy_version"):
        steps = sorted(m.step for m in client.get_metric_history(tracking["run_id"], metric))
        assert steps == [0, 1, 2], metric
    for metric in (
        "learner/loss",
        "teacher/acceptance_rate",
        "tokens_per_attempt",
        "selected_solve_rate_mean",
        "retention/worst_drop",
        "retention/worst_drop_so_far",
        "retention/drop/L1",
    ):
        assert [m.step for m in client.get_metric_history(tracking["run_id"], metric)] != []


def test_the_run_is_pinned_to_its_code(run_dir):
    from mlflow.tracking import MlflowClient

    from curriculum.run import code_version

    recorded = code_version.recorded(run_dir)
    assert recorded is not None and recorded.source_hash == code_version.source_hash(run_dir / "code")
    assert recorded == code_version.current()  # nothing was edited since the run
    tracking = json.loads((run_dir / "mlflow.json").read_text())
    tags = MlflowClient(tracking_uri=tracking["tracking_uri"]).get_run(tracking["run_id"]).data.tags
    assert tags["code.source_hash"] == recorded.source_hash and tags["code.git_commit"] == (recorded.git_commit or "")
