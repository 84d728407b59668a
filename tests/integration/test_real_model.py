"""The real-model path on CPU: the GPU recipes (configs/gsm8k_qwen.yaml with its GRPO learner,
configs/socratic_zero_gsm8k.yaml with its LLM Teacher and DPO learner, configs/sws_math.yaml with
LLM synthesis and GRPO) with a random-weight Qwen2 (a real BPE tokenizer and chat template) on the
dataset world, at minimal sizes with `solver.engine=hf`; and `curriculum eval` of that model.

The model writes nonsense, so nothing here asserts that it learns: only that the machinery is
right. The LLM Teacher talks to a scripted OpenAI-compatible endpoint (tests/scripted_endpoint.py)
that answers each of its prompts as a served model would.

A random model never answers right, so every GRPO group is all wrong: its advantages are zero and
SwS's filter would drop every group. The GRPO runs here widen the filter to keep them
(learner.grpo.filter_low=0, filter_high=1): TRL then runs its steps on the Solver's served token ids
and sampling log-probs, which proves the plumbing (the sampler's and the trainer's log-probs of a
BPE chat model agree token by token, the importance-sampling correction is on, steps and versions
are published) but not the update's direction; tests/unit/test_grpo.py proves the direction on the
toy model. DPO's winner when every attempt fails is the reference solution, a real gradient.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from scripted_endpoint import ScriptedEndpoint  # tests/, on sys.path via conftest.py

from curriculum.run.resume import compare_stores
from curriculum.store import Store

ROOT = Path(__file__).resolve().parents[2]
GSM8K_TRAIN = ROOT.parent / "shared/data/benchmarks/gsm8k/train.jsonl"

pytestmark = pytest.mark.integration

SMALL = [
    "loop.rounds=2",
    "loop.problems_per_round=6",
    "world.seed_set_size=6",
    "selection.seed_candidates=8",
    "selection.failed_fraction=0.875",
    "solver.attempts=4",
    "solver.max_new_tokens=16",
    "solver.engine=hf",
    "evaluation.max_new_tokens=16",
    "learner.steps_per_round=2",
    "learner.batch_size=4",
    "world.heldout_size.gsm8k=4",
    "world.heldout_size.math500=3",
    "model.lora.r=4",
    "model.lora.alpha=8",
]
# GRPO on a model that never answers right: keep the all-wrong groups (see the module's docstring).
GRPO_KEEPS_EVERY_GROUP = ["learner.grpo.filter_low=0", "learner.grpo.filter_high=1", "learner.grpo.groups_per_step=2"]


def curriculum(args: list[str], kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CURRICULUM_KILL_AT"}
    if kill_at:
        env["CURRICULUM_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "curriculum.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def overrides(model: Path, tmp: Path) -> list[str]:
    return [f"model.path={model}", f"experiment.runs_dir={tmp / 'runs'}", *SMALL]


def teacher_endpoint(endpoint: ScriptedEndpoint) -> list[str]:
    """The recipe's Teacher (a served 7B model) replaced by the scripted endpoint."""
    return [
        "teacher.serve=null",
        f"teacher.endpoint.base_url={endpoint.base_url}",
        "teacher.endpoint.model=scripted",
        "teacher.endpoint.max_concurrency=4",
    ]


def policy_metrics(run_dir: Path) -> dict[int, dict[str, float]]:
    with Store(run_dir / "store.duckdb", read_only=True) as store:
        rows = store.con.execute("SELECT version, metrics FROM policies ORDER BY version").fetchall()
    return {version: dict(metrics) for version, metrics in rows}


def round_metrics(run_dir: Path) -> dict[int, dict[str, float]]:
    with Store(run_dir / "store.duckdb", read_only=True) as store:
        return {r: dict(m) for r, m in store.con.execute("SELECT round, metrics FROM rounds ORDER BY round").fetchall()}


@pytest.fixture(scope="module")
def ray_run(random_qwen, tmp_path_factory) -> Path:
    """configs/gsm8k_qwen.yaml with its own GRPO learner: two rounds on a local Ray cluster."""
    tmp = tmp_path_factory.mktemp("gsm8k")
    run_dir = tmp / "ray"
    done = curriculum(
        [
            "run",
            "configs/gsm8k_qwen.yaml",
            *overrides(random_qwen, tmp),
            *GRPO_KEEPS_EVERY_GROUP,
            "--run-dir",
            str(run_dir),
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no GPU here" in done.stdout  # the one-GPU recipe said it runs on CPU here
    return run_dir


def test_seeds_come_from_gsm8k_train_and_attempts_are_graded_against_its_answers(ray_run):
    train = {json.loads(line)["question"] for line in GSM8K_TRAIN.read_text().splitlines()}
    with Store(ray_run / "store.duckdb", read_only=True) as store:
        seeds = store.problems(source="seed")
        assert seeds and all(p.question in train and p.family == "gsm8k_train" for p in seeds)
        # GSM8K's "#### 18" became the reference answer, and the reference solution ends in the world's format
        assert all(
            p.answer and "####" not in p.answer and p.solution.endswith(f"\\boxed{{{p.answer}}}.") for p in seeds
        )
        # no level field in GSM8K: the base model's solve rate at screening sets it (all 0 -> level 5)
        assert {p.level for p in seeds} == {5}
        attempts = [a for round_ in (0, 1, 2) for a in store.round_attempts(round_, [p.id for p in seeds])]
        rounds = {a.round for a in attempts}
        assert rounds == {0, 1, 2} and not any(a.correct for a in attempts)
        for problem in store.problems():  # every problem's lineage reaches a seed of the data set
            chain = [problem, *store.ancestors(problem.id)]
            assert chain[-1].source == "seed" and chain[-1].family == "gsm8k_train"


def test_each_round_logs_its_costs_through_the_actors(ray_run):
    """The recipe's Solver and Learner share a GPU (0.5 each): on this CPU machine they sleep and
    wake through their actors all the same, and each round's metrics say what it cost."""
    for m in round_metrics(ray_run).values():
        assert m["rollout/tokens_per_second"] > 0 and m["learner/step_seconds"] > 0
        assert m["learner/peak_gpu_memory_gib"] == m["solver/peak_gpu_memory_gib"] == 0.0  # no CUDA here


def test_grpo_steps_ran_on_the_solvers_tokens_with_matching_logprobs(ray_run):
    """What a run of the recipe's own learner proves with a model that is always wrong (docstring)."""
    metrics = policy_metrics(ray_run)
    assert sorted(metrics) == [1, 2]
    for m in metrics.values():
        assert m["steps"] == 2 and m["groups_kept"] == 4 and m["groups_dropped"] == 0
        assert m["reward"] == 0 and m["importance_sampling_off"] == 0 and m["attempts_without_logprobs"] == 0
        # the HF engine's sampling log-probs of its own BPE tokens equal the trainer's: ratio 1
        assert m["sampling/sampling_logp_difference/mean"] < 1e-3
        assert m["sampling/importance_sampling_ratio/mean"] == pytest.approx(1.0, abs=1e-3)
    for r, m in round_metrics(ray_run).items():  # grades counted every round, none timed out
        assert m["verify/grades"] >= 6 * 4 and m["verify/timeouts"] == 0, r
    results = json.loads((ray_run / "results.json").read_text())
    for evaluation in (results["base_eval"], results["final_eval"]):
        counts = {cell["family"]: cell["n"] for cell in evaluation["cells"] if cell["level"] is None}
        math_levels = sum(cell["n"] for cell in evaluation["cells"] if cell["family"] == "math500")
        assert counts["gsm8k"] == 4 and math_levels == 3  # the subsets, MATH-500 by its own levels


# ----------------------------------------------------------------------------- Socratic-Zero on GSM8K


def words(path: Path) -> Path:
    """A seed set whose answers are sentences ending in a number, but two are words."""
    answers = {3: "The answer is Yes", 6: "The answer is Alice"}
    path.write_text(
        "".join(
            json.dumps(
                {
                    "question": f"Ann has {i} pears and eats one. How many are left?",
                    "answer": answers.get(i, f"The answer is {i - 1}"),
                }
            )
            + "\n"
            for i in range(2, 10)
        )
    )
    return path


# The recipe's Generator at minimal sizes: it trains in round 2 (after its warm-up round) and proposes.
GENERATOR = [
    "generator.proposals_per_round=8",
    "generator.max_new_tokens=32",
    "generator.batch_size=4",
    "generator.micro_batch_size=4",
    "generator.label_checks=2",
]


@pytest.fixture(scope="module")
def socratic_run(random_qwen, tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """configs/socratic_zero_gsm8k.yaml: the LLM Teacher (scripted endpoint), DPO and the Generator,
    two rounds in process; a second seed set with word answers is read with world.skip_invalid=true.
    The model is the fixture with short replies (`with_short_replies`): otherwise the random model's
    drafts never end and none would reach the labeller."""
    from curriculum.testing.random_qwen import with_short_replies

    tmp = tmp_path_factory.mktemp("socratic")
    run_dir = tmp / "run"
    model = with_short_replies(random_qwen, tmp / "short-replies")
    with ScriptedEndpoint() as endpoint:
        done = curriculum(
            [
                "run",
                "configs/socratic_zero_gsm8k.yaml",
                *overrides(model, tmp),
                *teacher_endpoint(endpoint),
                *GENERATOR,
                "teacher.max_failures=2",
                "selection.fresh_fraction=0.25",
                "selection.failed_fraction=0.75",
                "ray.in_process=true",
                f"datasets.words.path={words(tmp / 'words.jsonl')}",
                "datasets.words.extraction=last_number",
                "world.seed_sets=[gsm8k_train,words]",
                "world.skip_invalid=true",
                "--run-dir",
                str(run_dir),
            ]
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "note: skipped 2 records with no answer" in done.stdout
    return run_dir, endpoint.calls


def test_socratic_zero_stores_reference_solutions_in_the_boxed_format_with_their_steps(socratic_run):
    from curriculum.verify import Verifier

    run_dir, _ = socratic_run
    raw = {}
    for line in GSM8K_TRAIN.read_text().splitlines():
        record = json.loads(line)
        raw[record["question"]] = record["answer"]
    with Store(run_dir / "store.duckdb", read_only=True) as store:
        seeds = [p for p in store.problems(source="seed") if p.family == "gsm8k_train"]
        pairs = store.con.execute("SELECT problem_id, chosen FROM pairs WHERE chosen_is_reference").fetchall()
        problems = {p.id: p for p in store.problems()}
    assert seeds and pairs
    for seed in seeds:
        steps = re.sub(r"<<[^<>]*>>", "", raw[seed.question]).rsplit("\n####", 1)[0]
        assert seed.solution == f"{steps}\nThe final answer is \\boxed{{{seed.answer}}}."
    # All attempts fail: the DPO winner is the reference solution, and the loop's own grader marks it right.
    assert all(chosen == problems[pid].solution for pid, chosen in pairs)
    with Verifier() as verifier:
        grades = verifier.grade_many([c for _, c in pairs], [problems[pid].answer for pid, _ in pairs], "boxed")
    assert all(g.correct for g in grades)


def test_socratic_zero_teacher_wrote_labelled_problems_and_dpo_moved_the_adapter(socratic_run):
    run_dir, calls = socratic_run
    assert calls["diagnose"] >= 1 and calls["write"] >= 1 and calls["label"] >= 8
    with Store(run_dir / "store.duckdb", read_only=True) as store:
        taught = store.problems(source="teacher")
        assert taught and all(p.answer_source == "model" and p.vote_share == 1.0 and p.parent_id for p in taught)
        assert all(store.ancestors(p.id)[-1].source == "seed" for p in taught)
    v1 = load_file(run_dir / "checkpoints/policy_v0001/adapter_model.safetensors")
    v2 = load_file(run_dir / "checkpoints/policy_v0002/adapter_model.safetensors")
    lora_b = [k for k in v2 if "lora_B" in k]
    assert lora_b and all(v2[k].abs().sum() > 0 for k in lora_b)  # B starts at zero
    assert any(not (v1[k] == v2[k]).all() for k in v2)


def test_socratic_zero_generator_learned_from_the_teacher_and_its_drafts_were_voted_and_admitted(socratic_run):
    """The acceptance line of the Generator on a dataset world: it trained on the Teacher's pairs, its
    drafts were labelled by the labeller's vote (the scripted labeller answers them all \\boxed{0})
    and passed the admission gate, and the labeller was checked against GSM8K's own answers."""
    run_dir, _ = socratic_run
    metrics = round_metrics(run_dir)
    assert "generator/accepted" not in metrics[1]  # warm-up: round 1 trains only
    second = metrics[2]
    assert second["generator/examples"] >= 1 and second["generator/version"] == 1
    assert second["generator/accepted"] + second["generator/rejected"] == 8  # every proposal accounted for
    assert second["generator/accepted"] >= 1
    # 8 votes per labelled draft and per reference problem; the labeller never gives GSM8K's answer
    labelled = second["generator/calls"] / 8
    assert labelled == int(labelled) and labelled >= second["generator/accepted"] + 2
    assert second["labels/reference_checked"] == 2 and second["labels/reference_agreement"] == 0.0
    with Store(run_dir / "store.duckdb", read_only=True) as store:
        made = store.problems(source="generator")
        stored = {p.id for p in store.problems()}
        votes = dict(
            store.con.execute(
                """SELECT d, count(*) FROM (SELECT unnest(drafts) AS d FROM calls
                   WHERE source = 'generator' AND node = 'label') GROUP BY d"""
            ).fetchall()
        )
        rejected = store.con.execute("SELECT reason FROM rejected WHERE source = 'generator'").fetchall()
    assert len(made) == second["generator/accepted"] and len(rejected) == second["generator/rejected"]
    for problem in made:
        assert (problem.answer, problem.answer_source, problem.vote_share) == ("0", "model", 1.0)
        assert problem.model_version == 1 and problem.round_created == 2 and problem.parent_id in stored
        assert votes[problem.id] == 8 and "\\boxed{0}" in problem.solution


def test_socratic_zero_inspect_and_lineage_show_the_generator_problems_with_their_votes(socratic_run, capsys):
    from curriculum.cli import main
    from curriculum.report.lineage import load_lineage
    from curriculum.report.summary import summarize

    run_dir, _ = socratic_run
    summary = summarize(run_dir)
    accepted = summary["acceptance"]["generator"]["accepted"]
    assert accepted >= 1
    assert {c["node"] for c in summary["calls"] if c["source"] == "generator"} == {"label"}
    second = next(r for r in summary["label_quality"]["rounds"] if r["round"] == 2)
    assert second["reference_checked"] == 2 and second["reference_agreement"] == 0.0
    assert main(["inspect", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"│ generator\s+│\s+{accepted} │", out)  # the acceptance table's row
    assert "reference" in out  # the label-quality table's columns for a world without an oracle
    with Store(run_dir / "store.duckdb", read_only=True) as store:
        problem = store.problems(source="generator")[0]
    lineage, _ = load_lineage(run_dir, problem.id)
    made = lineage.provenance
    assert made.call_id is None and made.node == "generator" and made.endpoint == "generator v1"
    assert (made.label_calls, made.vote_share, made.answer_source) == (8, 1.0, "model")
    assert lineage.ancestors[0].id == problem.parent_id
    assert main(["lineage", str(run_dir), problem.id]) == 0
    out = capsys.readouterr().out
    assert "written by generator v1" in out and "answer: model, vote share 1.00 from 8 label call(s)" in out


def test_records_without_an_answer_were_skipped_and_counted(socratic_run):
    from mlflow.tracking import MlflowClient

    run_dir, _ = socratic_run
    results = json.loads((run_dir / "results.json").read_text())
    assert results["skipped_invalid"]["count"] == 2
    lines = [entry.split(": ")[0].rsplit(":", 1)[1] for entry in results["skipped_invalid"]["lines"]]
    assert lines == ["2", "5"]  # "Yes" and "Alice", named by file and line
    tracking = json.loads((run_dir / "mlflow.json").read_text())
    history = MlflowClient(tracking["tracking_uri"]).get_metric_history(tracking["run_id"], "data/skipped_invalid")
    assert [(m.step, m.value) for m in history] == [(0, 2.0)]


# ----------------------------------------------------------------------------- SwS with LLM synthesis


def test_sws_math_runs_end_to_end(random_qwen, tmp_path):
    """configs/sws_math.yaml for one round: weaknesses (the failing seeds) -> concepts -> questions ->
    majority labels (scripted endpoint) -> screening by the Solver -> GRPO."""
    run_dir = tmp_path / "sws"
    with ScriptedEndpoint() as endpoint:
        done = curriculum(
            [
                "run",
                "configs/sws_math.yaml",
                *overrides(random_qwen, tmp_path),
                *teacher_endpoint(endpoint),
                *GRPO_KEEPS_EVERY_GROUP,
                "loop.rounds=1",
                "synthesis.budget=2",
                "selection.failed_fraction=0.5",
                "ray.in_process=true",
                "--run-dir",
                str(run_dir),
            ]
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert endpoint.calls["concepts"] >= 1 and endpoint.calls["question"] == 2 and endpoint.calls["label"] == 16
    [round_1] = round_metrics(run_dir).values()
    assert round_1["synthesis/drafts"] == 2 and round_1["synthesis/attempts"] == 2 * 4
    assert round_1["synthesis/accepted"] + round_1["synthesis/rejected"] == 2
    assert round_1["learner/steps"] == 2
    with Store(run_dir / "store.duckdb", read_only=True) as store:
        nodes = dict(
            store.con.execute("SELECT node, count(*) FROM calls WHERE source = 'synthesis' GROUP BY node").fetchall()
        )
        reasons = [r for (r,) in store.con.execute("SELECT reason FROM rejected WHERE source = 'synthesis'").fetchall()]
    assert nodes["question"] == 2 and nodes["label"] == 16
    assert reasons == ["too_hard"] * 2  # labelled by the Teacher's model, never solved by the random Solver


def test_a_killed_run_resumes_to_the_records_of_an_uninterrupted_one(random_qwen, tmp_path):
    args = [*overrides(random_qwen, tmp_path), *GRPO_KEEPS_EVERY_GROUP, "ray.in_process=true", "loop.rounds=1"]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert curriculum(["run", "configs/gsm8k_qwen.yaml", *args, "--run-dir", str(reference)]).returncode == 0
    first = curriculum(
        ["run", "configs/gsm8k_qwen.yaml", *args, "--run-dir", str(killed)], kill_at="learn:after-update@1"
    )
    assert first.returncode == -signal.SIGKILL
    resumed = curriculum(["resume", str(killed)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    comparison = compare_stores(reference / "store.duckdb", killed / "store.duckdb")
    assert comparison.compared > 30 and comparison.equal, comparison.details[:10]


def test_eval_of_a_model_folder_on_a_benchmark_and_on_a_file_with_a_question_template(random_qwen, tmp_path):
    named = curriculum(
        [
            "eval",
            str(random_qwen),
            "--dataset",
            "gsm8k",
            "--limit",
            "5",
            "--max-new-tokens",
            "8",
            "--out",
            str(tmp_path / "gsm8k.json"),
            "--json",
        ]
    )
    assert named.returncode == 0, named.stderr[-2000:]
    assert json.loads(named.stdout)["problems"] == 5
    mine = tmp_path / "svamp.jsonl"
    mine.write_text(
        "\n".join(
            json.dumps({"Body": f"Tom has {n} apples.", "Question": "How many apples does he have?", "Answer": n})
            for n in (3, 7)
        )
        + "\n"
    )
    templated = curriculum(
        [
            "eval",
            str(random_qwen),
            "--dataset",
            str(mine),
            "--question-field",
            "{Body} {Question}",
            "--answer-field",
            "Answer",
            "--max-new-tokens",
            "8",
            "--out",
            str(tmp_path / "s.json"),
        ]
    )
    assert templated.returncode == 0, templated.stderr[-2000:]
    items = json.loads((tmp_path / "s.json").read_text())["items"]
    assert [item["reference"] for item in items] == ["3", "7"]
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"Body": "Tom has 3 apples.", "Answer": 3}) + "\n")
    missing = curriculum(
        [
            "eval",
            str(random_qwen),
            "--dataset",
            str(broken),
            "--question-field",
            "{Body} {Question}",
            "--answer-field",
            "Answer",
        ]
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: {broken}:1: missing field 'Question' (fields: Answer, Body)"
    ]
