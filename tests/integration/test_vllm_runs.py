"""Whole runs with `solver.engine=vllm`, through the real CLI at minimal sizes.

- The toy recipe killed after sampling round 1's attempts and resumed ends exactly like an
  uninterrupted run: the guarantee `solver.engine=vllm` gives on resume (README, "vLLM"). Every
  request is seeded from the round's seed and its prompt, so the attempts a new process samples
  again are the ones the killed process had sampled; on CPU (float32) they are bit-identical.
  As in tests/integration/test_resume.py every role runs in the driver (`ray.in_process=true`)
  so the kill takes the whole run down.
- The GSM8K recipe (GRPO) on the random Qwen2 fixture with Ray actors: the Learner trains on the
  vLLM Solver's token ids with its log-probs, and TRL's importance-sampling ratio is ~1
  (vLLM's float32 log-probs agree with the trainer's).
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
from curriculum.store import Store

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.vllm]

ENGINE = ["solver.engine=vllm", "solver.vllm.enforce_eager=true"]
# The toy recipe at test size; vLLM's CPU attention needs head_dim >= 32.
TINY_VLLM = ENGINE + [
    "model.tiny.hidden_size=64",
    "model.tiny.num_layers=2",
    "model.tiny.num_heads=2",
    "model.tiny.num_kv_heads=1",
    "model.tiny.intermediate_size=128",
    "pretrain.examples=128",
    "pretrain.batch_size=32",
    "world.families=[add,sub]",
    "world.max_level=3",
    "world.heldout_per_level=3",
    "world.seed_set_size=12",
    "selection.seed_candidates=24",
    "selection.seed_band_low=0",
    "selection.seed_band_high=1",
    "solver.attempts=4",
    "selection.fresh_fraction=0",
    "selection.failed_fraction=1",
    "selection.solved_fraction=0",  # 8 of the seeds
    "solver.max_new_tokens=48",
    "evaluation.max_new_tokens=48",
    "loop.rounds=1",
    "loop.problems_per_round=8",
    "generator.enabled=false",
    "teacher.max_failures=4",
    "model.lora.r=8",
    "model.lora.alpha=16",
    "learner.steps_per_round=2",
    "ray.in_process=true",
]


def curriculum(args: list[str], kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("CURRICULUM_KILL_AT", None)
    if kill_at:
        env["CURRICULUM_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "curriculum.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vllm-resume")
    overrides = TINY_VLLM + [f"experiment.runs_dir={tmp / 'runs'}", f"model.cache_dir={tmp / 'cache'}"]
    reference, killed = tmp / "reference", tmp / "killed"
    done = curriculum(["run", "configs/tiny.yaml", *overrides, "--run-dir", str(reference)])
    assert done.returncode == 0, done.stderr[-3000:]
    crashed = curriculum(
        ["run", "configs/tiny.yaml", *overrides, "--run-dir", str(killed)], kill_at="commit:attempt@1"
    )  # round 1's attempts sampled, not stored
    resumed = curriculum(["resume", str(killed)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return reference, killed, crashed.returncode, done.stdout


def test_a_vllm_run_completes_and_keeps_the_sampled_tokens(tiny_runs):
    reference, _, _, stdout = tiny_runs
    assert "held-out accuracy %: base model vs final policy" in " ".join(stdout.split())  # the table's title
    assert json.loads((reference / "results.json").read_text())["policy_version"] == 1
    with Store(reference / "store.duckdb", read_only=True) as store:
        attempts = store.round_attempts(1)
    assert len(attempts) >= 16 and all(len(a.token_ids) == len(a.token_logprobs) == a.num_tokens > 0 for a in attempts)
    assert all(sum(a.token_logprobs) == pytest.approx(a.logprob, abs=1e-3) for a in attempts)
    # The engine's files (the zero adapter serving v0, vLLM's caches) are on the Solver's node, not
    # in the run directory (curriculum/rundir.py)
    assert not (reference / "solvers").exists()


def test_a_run_killed_after_sampling_resumes_to_the_same_records(tiny_runs):
    reference, killed, crash_code, _ = tiny_runs
    assert crash_code == -signal.SIGKILL
    comparison = compare_stores(reference / "store.duckdb", killed / "store.duckdb")
    assert comparison.compared > 60  # problems, attempts (round 0 and the re-sampled round 1), pairs, ...
    assert comparison.equal, comparison.details[:10]
    name = "checkpoints/policy_v0001/adapter_model.safetensors"
    assert (reference / name).read_bytes() == (killed / name).read_bytes()


def test_gsm8k_recipe_with_vllm_solver_and_grpo_on_its_logprobs(random_qwen, tmp_path):
    result = curriculum(
        [
            "run",
            "configs/gsm8k_qwen.yaml",
            f"model.path={random_qwen}",
            *ENGINE,
            "loop.rounds=1",
            "loop.problems_per_round=8",
            "world.seed_set_size=8",
            "selection.seed_candidates=16",
            "solver.attempts=4",
            "solver.max_new_tokens=32",
            "learner.steps_per_round=2",
            "learner.grpo.groups_per_step=2",
            # The random model's groups all grade wrong; a filter band of [0, 1] keeps them, so TRL
            # runs its steps (zero advantage) and computes the sampler/trainer ratio on every one.
            "learner.grpo.filter_low=0",
            "learner.grpo.filter_high=1",
            "world.heldout_size.gsm8k=6",
            "world.heldout_size.math500=6",
            "evaluation.max_new_tokens=32",
            "ray.num_cpus=2",
            f"experiment.runs_dir={tmp_path / 'runs'}",
            "--run-dir",
            str(tmp_path / "run"),
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "held-out accuracy %: base model vs final policy" in " ".join(result.stdout.split())
    run = tmp_path / "run"
    with Store(run / "store.duckdb", read_only=True) as store:
        metrics = store.con.execute("SELECT metrics FROM rounds WHERE round = 1").fetchone()[0]
        attempts = store.round_attempts(1)
    assert attempts and all(a.token_ids and len(a.token_logprobs) == len(a.token_ids) for a in attempts)
    assert metrics["learner/steps"] == 2
    assert metrics["learner/sampling/importance_sampling_ratio/mean"] == pytest.approx(1.0, abs=0.01)
    assert metrics["learner/sampling/sampling_logp_difference/mean"] < 1e-4
