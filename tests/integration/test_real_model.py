"""The real-model path on CPU: configs/gsm8k_qwen.yaml with a random-weight Qwen2 (a real BPE
tokenizer and chat template) on the dataset world, and `curriculum eval` of that model.

The model writes nonsense, so nothing here asserts that it learns: only that the machinery is
right. The runs use the DPO learner: a random model never answers right, so GRPO's advantages
are all zero and its difficulty filter drops every group, while DPO's winner is the GSM8K
reference solution when every attempt fails, a real gradient on the LoRA weights.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from curriculum.run.resume import compare_stores
from curriculum.store import Store

ROOT = Path(__file__).resolve().parents[2]
GSM8K_TRAIN = ROOT.parent / "shared/data/benchmarks/gsm8k/train.jsonl"

pytestmark = pytest.mark.integration

SMALL = ["loop.rounds=2", "loop.problems_per_round=6", "world.seed_set_size=6", "selection.seed_candidates=8",
         "selection.failed_fraction=0.875", "solver.attempts=4", "solver.max_new_tokens=16",
         "evaluation.max_new_tokens=16", "learner.steps_per_round=2", "learner.batch_size=4",
         "learner.algorithm=dpo", "world.heldout_size.gsm8k=4", "world.heldout_size.math500=3", "model.lora.r=4",
         "model.lora.alpha=8"]


def curriculum(args: list[str], kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CURRICULUM_KILL_AT"}
    if kill_at:
        env["CURRICULUM_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "curriculum.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def overrides(model: Path, tmp: Path) -> list[str]:
    return [f"model.path={model}", f"experiment.runs_dir={tmp / 'runs'}", *SMALL]


@pytest.fixture(scope="module")
def ray_run(random_qwen, tmp_path_factory) -> Path:
    """Two rounds on a local Ray cluster."""
    tmp = tmp_path_factory.mktemp("gsm8k")
    run_dir = tmp / "ray"
    done = curriculum(["run", "configs/gsm8k_qwen.yaml", *overrides(random_qwen, tmp), "--run-dir", str(run_dir)])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no GPU here" in done.stdout  # the one-GPU recipe said it runs on CPU here
    return run_dir


def test_seeds_come_from_gsm8k_train_and_attempts_are_graded_against_its_answers(ray_run):
    train = {json.loads(line)["question"] for line in GSM8K_TRAIN.read_text().splitlines()}
    with Store(ray_run / "store.duckdb", read_only=True) as store:
        seeds = store.problems(source="seed")
        assert seeds and all(p.question in train and p.family == "gsm8k_train" for p in seeds)
        # GSM8K's "#### 18" became the reference answer, its worked solution the reference solution
        assert all(p.answer and "####" not in p.answer and "####" in p.solution for p in seeds)
        # no level field in GSM8K: the base model's solve rate at screening sets it (all 0 -> level 5)
        assert {p.level for p in seeds} == {5}
        attempts = [a for p in seeds for a in store.attempts_for(p.id)]
        rounds = {a.round for a in attempts}
        assert rounds == {0, 1, 2} and not any(a.correct for a in attempts)
        for problem in store.problems():  # every problem's lineage reaches a seed of the data set
            chain = [problem, *store.ancestors(problem.id)]
            assert chain[-1].source == "seed" and chain[-1].family == "gsm8k_train"


def test_lora_weights_changed_and_heldout_subsets_were_evaluated(ray_run):
    v1 = load_file(ray_run / "checkpoints/policy_v0001/adapter_model.safetensors")
    v2 = load_file(ray_run / "checkpoints/policy_v0002/adapter_model.safetensors")
    lora_b = [k for k in v2 if "lora_B" in k]
    assert lora_b and all(v2[k].abs().sum() > 0 for k in lora_b)  # B starts at zero
    assert any(not (v1[k] == v2[k]).all() for k in v2)
    results = json.loads((ray_run / "results.json").read_text())
    for evaluation in (results["base_eval"], results["final_eval"]):
        counts = {cell["family"]: cell["n"] for cell in evaluation["cells"] if cell["level"] is None}
        math_levels = sum(cell["n"] for cell in evaluation["cells"] if cell["family"] == "math500")
        assert counts["gsm8k"] == 4 and math_levels == 3  # the subsets, MATH-500 by its own levels


def test_a_killed_run_resumes_to_the_records_of_an_uninterrupted_one(random_qwen, tmp_path):
    args = [*overrides(random_qwen, tmp_path), "ray.in_process=true", "loop.rounds=1"]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert curriculum(["run", "configs/gsm8k_qwen.yaml", *args, "--run-dir", str(reference)]).returncode == 0
    first = curriculum(["run", "configs/gsm8k_qwen.yaml", *args, "--run-dir", str(killed)],
                       kill_at="learn:after-update@1")
    assert first.returncode == -signal.SIGKILL
    resumed = curriculum(["resume", str(killed)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    comparison = compare_stores(reference / "store.duckdb", killed / "store.duckdb")
    assert comparison.compared > 30 and comparison.equal, comparison.details[:10]


def test_eval_of_a_model_folder_on_a_benchmark_and_on_a_file_with_a_question_template(random_qwen, tmp_path):
    named = curriculum(["eval", str(random_qwen), "--dataset", "gsm8k", "--limit", "5", "--max-new-tokens", "8",
                        "--out", str(tmp_path / "gsm8k.json"), "--json"])
    assert named.returncode == 0, named.stderr[-2000:]
    assert json.loads(named.stdout)["problems"] == 5
    mine = tmp_path / "svamp.jsonl"
    mine.write_text("\n".join(json.dumps({"Body": f"Tom has {n} apples.", "Question": "How many apples does he have?",
                                          "Answer": n}) for n in (3, 7)) + "\n")
    templated = curriculum(["eval", str(random_qwen), "--dataset", str(mine), "--question-field", "{Body} {Question}",
                            "--answer-field", "Answer", "--max-new-tokens", "8", "--out", str(tmp_path / "s.json")])
    assert templated.returncode == 0, templated.stderr[-2000:]
    items = json.loads((tmp_path / "s.json").read_text())["items"]
    assert [item["reference"] for item in items] == ["3", "7"]
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"Body": "Tom has 3 apples.", "Answer": 3}) + "\n")
    missing = curriculum(["eval", str(random_qwen), "--dataset", str(broken), "--question-field",
                          "{Body} {Question}", "--answer-field", "Answer"])
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: {broken}:1: missing field 'Question' (fields: Answer, Body)"]
