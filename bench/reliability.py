"""Crash safety and input hardening, measured end to end.

1. Kills: an uninterrupted tiny run, then the same run SIGKILLed at every kill point of
   `curriculum.run.faults` in turn (each stage's commit, mid-learn, mid-checkpoint, before the
   MLflow log...), resumed after each kill with `curriculum resume`. Every record of the
   two stores is compared by key (timings aside); the adapters, the final evaluation and the
   MLflow history must match too.
2. Bad inputs: config, data, model-path and run-directory mistakes through the CLI, each
   expected to exit 2 with one line and write nothing.
3. Hostile model output: drafts through the admission gate, pathological completions and
   hypothesis-generated text through extraction + verification (the slowest grade reported).

Ends with `RESULT kills_survived=… records_compared=… records_lost=… records_duplicated=…
bad_inputs_tried=… hostile_outputs_tried=… max_verify_ms=…`; exits 1 if anything was lost,
duplicated, changed or accepted that should not be.

    .venv/bin/python bench/reliability.py [--quick] [--fuzz N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

TINY = [
    "model.tiny.hidden_size=32", "model.tiny.num_layers=2", "model.tiny.num_heads=2", "model.tiny.num_kv_heads=1",
    "model.tiny.intermediate_size=64", "pretrain.examples=128", "pretrain.batch_size=32",
    "world.families=[add,sub]", "world.max_level=3", "world.heldout_per_level=3", "world.seed_set_size=12",
    "selection.seed_candidates=24", "solver.attempts=4", "solver.max_new_tokens=48", "evaluation.max_new_tokens=48",
    "loop.rounds=2", "loop.problems_per_round=8", "generator.warmup_rounds=0", "generator.proposals_per_round=4",
    "teacher.max_failures=4", "ray.in_process=true",
]
# In run order: each resumed process is killed at the next point.
KILLS = [
    "commit:seed@0", "commit:select@1", "commit:attempt@1", "learn:after-update@1", "commit:learn@1",
    "commit:teach@1", "commit:synthesize@1", "commit:distil@1", "commit:evaluate@1", "commit:snapshot@1",
    "checkpoint:before-latest@1", "commit:checkpoint@1", "round:before-log@1", "stage:attempt@2", "commit:distil@2",
]
QUICK_KILLS = ["commit:attempt@1", "learn:after-update@1", "commit:snapshot@1", "checkpoint:before-latest@1",
               "commit:distil@2"]


def curriculum(args: list[str], kill_at: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "CURRICULUM_KILL_AT"}
    if kill_at:
        env["CURRICULUM_KILL_AT"] = kill_at
    done = subprocess.run([sys.executable, "-m", "curriculum.cli", *args], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode not in (0, -signal.SIGKILL):
        print(done.stderr[-3000:], file=sys.stderr)
    return done.returncode


def kills(tmp: Path, points: list[str]) -> dict:
    from mlflow.tracking import MlflowClient

    from curriculum.run.resume import compare_stores

    common = ["run", "configs/tiny.yaml", *TINY, f"experiment.runs_dir={tmp / 'runs'}",
              f"model.cache_dir={tmp / 'cache'}"]
    reference, killed = tmp / "reference", tmp / "killed"
    start = time.perf_counter()
    if curriculum([*common, "--run-dir", str(reference)]) != 0:
        raise SystemExit("the uninterrupted run failed")
    print(f"uninterrupted run: {time.perf_counter() - start:.0f} s", flush=True)
    survived = 0
    for i, point in enumerate(points):
        args = [*common, "--run-dir", str(killed)] if i == 0 else ["resume", str(killed)]
        code = curriculum(args, kill_at=point)
        survived += code == -signal.SIGKILL
        print(f"killed at {point:<28} {'ok' if code == -signal.SIGKILL else f'NOT KILLED (exit {code})'}", flush=True)
    if curriculum(["resume", str(killed)]) != 0:
        raise SystemExit("the final resume failed")

    comparison = compare_stores(reference / "store.duckdb", killed / "store.duckdb")
    for line in comparison.details[:20]:
        print("  ", line)
    problems = []
    for version in (1, 2):
        name = f"checkpoints/policy_v{version:04d}/adapter_model.safetensors"
        if (reference / name).read_bytes() != (killed / name).read_bytes():
            problems.append(f"adapter v{version} differs")
    ref_results, got_results = (json.loads((d / "results.json").read_text()) for d in (reference, killed))
    if ref_results["final_eval"] != got_results["final_eval"]:
        problems.append("final evaluation differs")
    tracking = [json.loads((d / "mlflow.json").read_text()) for d in (reference, killed)]
    client = MlflowClient(tracking_uri=tracking[1]["tracking_uri"])
    for key in ("policy_version", "eval/accuracy", "learner/loss", "seeds/seeds"):
        want, got = (sorted((m.step, m.value) for m in client.get_metric_history(t["run_id"], key))
                     for t in tracking)
        if want != got:
            problems.append(f"MLflow {key}: {got} vs {want}")
    for line in problems:
        print("  ", line)
    return {"kills_survived": survived, "kills_tried": len(points), "records_compared": comparison.compared,
            "records_lost": comparison.lost, "records_duplicated": comparison.duplicated,
            "records_differing": comparison.differing, "other_differences": len(problems)}


def bad_inputs(tmp: Path) -> tuple[int, int]:
    """(tried, handled): handled = exit 2, one line, nothing written."""
    from curriculum import cli

    data = tmp / "data"
    data.mkdir()
    files = {"bad_line": b'{"question": "1+1", "answer": "2"}\n{"question": oops}\n',
             "no_field": b'{"question": "1+1"}\n', "empty": b"", "array": b'[{"question": "1", "answer": "1"}]\n',
             "binary": bytes(range(256)) * 8}
    for name, content in files.items():
        (data / f"{name}.jsonl").write_bytes(content)
    tiny = str(ROOT / "configs/tiny.yaml")
    cases = [[o] for o in ("solver.atempts=3", "solvr.attempts=3", "solver.attempts=many", "solver.attempts=0",
                           "selection.band_low=0.875", "selection.band_low=0.3", "loop.rounds=-1", "loop.rounds",
                           "learner.learning_rate=-1", "solver.top_p=2", "model.kind=hf",
                           "decontamination.eval_sets=[nope]")]
    cases.append(["model.kind=hf", "model.path=/no/such/model"])
    cases += [[f"data_root={data}", f"datasets.bad.path={name}.jsonl", "decontamination.eval_sets=[bad]"]
              for name in [*files, "missing"]]
    runs = tmp / "bad-runs"
    argvs = [["run", tiny, f"experiment.runs_dir={runs}", *case] for case in cases]
    argvs.append(["run", str(tmp / "no_such.yaml")])
    existing = tmp / "existing"
    existing.mkdir()
    (existing / "config.yaml").write_text("{}\n")
    argvs += [["run", tiny, "--run-dir", str(existing)], ["resume", str(tmp / "nowhere")], ["resume", str(data)]]
    handled = 0
    for argv in argvs:
        err = io.StringIO()
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            code = cli.main(argv)
        lines = err.getvalue().strip().splitlines()
        ok = code == 2 and len(lines) == 1 and not runs.exists() and [p.name for p in existing.iterdir()] == [
            "config.yaml"]
        handled += ok
        if not ok:
            print(f"bad input NOT handled: {argv[2:] or argv}: exit {code}, {lines}")
    return len(argvs), handled


def hostile(fuzz_cases: int) -> tuple[int, int, float]:
    """(tried, mishandled, slowest grade in ms)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from curriculum.config import from_dict
    from curriculum.curricula import admission
    from curriculum.records import Problem
    from curriculum.verify import Verifier
    from curriculum.worlds.arithmetic import ArithmeticWorld

    world = ArithmeticWorld(from_dict({"world": {"families": ["add"], "max_level": 2}}).world, seed=0)
    stored, heldout = world.seed_problems()[0], world.heldout()[0]

    def draft(question, answer="86", **kw):
        return Problem(question=question, answer=answer, source="teacher", parent_id="p", round_created=1, **kw)

    drafts = [draft("   "), draft("1+1=?", answer=""), draft("9" * 1_000_000 + "+1=?"), draft("2+2=?", "4\ud800"),
              draft("12+30=?\x00", "42"), draft("import os; os.system('x')", "0"),
              draft(stored.question, stored.answer),
              draft(heldout.question, heldout.answer), draft("40+2=?", "41"), draft("{" * 10_000, "1")]
    accepted, rejected = admission.screen(drafts, {stored.id}, {heldout.id}, world, "teacher", 1)
    mishandled = len(accepted)

    completions = [
        "answer: " + "9" * 1_000_000, "\\boxed{" + "1" * 1_000_000 + "}", "x" * 1_000_000,
        "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}", "\\boxed{" + "\\frac{" * 3000 + "1" + "}" * 3000 + "}",
        "\\boxed{2^{2^{2^{2^{2^{2}}}}}}", "answer: 9^9^9^9^9", "answer: 2**2**2**2**2**2", "\\boxed{9^{9^{9}}}",
        "\\boxed{\\frac{1}{2}", "answer: }}}{{{", "\\boxed{" * 10_000, "answer: \\left( \\right( \\left[",
        "answer: __import__('os').system('echo pwned')",
        "```python\nimport os\nos.remove('x')\n```\nanswer: os.remove('x')",
        "answer: $$$$\\", "\\boxed{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{2}}}}}}}}",
        "answer: 10^{10^{10}}", "answer: \\int_0^\\infty e^{-x^2} dx", "answer: 1e999999",
        "answer: " + "(1+" * 300 + "1" + ")" * 300,
    ]
    times: list[float] = []
    with Verifier(timeout_s=2.0) as verifier:
        verifier.grade("answer: \\frac{1}{2}", "0.5")  # start the worker outside the timings
        for completion in completions:
            for reference in ("3", "\\frac{1}{2}", "x^2"):
                start = time.perf_counter()
                correct = verifier.grade(completion, reference, "auto").correct
                times.append(time.perf_counter() - start)
                mishandled += correct

        text = st.one_of(st.text(max_size=200), st.lists(st.sampled_from(
            ["\\boxed{", "}", "{", "^", "^{", "\\frac{", "answer:", "####", "$", "(", ")", "1", "9" * 30, "x", "**",
             "\\sqrt{", "\n", " "]), max_size=40).map("".join))

        @settings(max_examples=fuzz_cases, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(text, text)
        def fuzz(completion, reference):
            start = time.perf_counter()
            verifier.grade_many([completion, reference], [reference, reference], "auto")
            times.append(time.perf_counter() - start)

        fuzz()
    return len(drafts) + 3 * len(completions) + fuzz_cases, mishandled, 1000 * max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{len(QUICK_KILLS)} kill points instead of {len(KILLS)}")
    parser.add_argument("--fuzz", type=int, default=2000, help="hypothesis cases through extraction + verification")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reliability-") as name:
        tmp = Path(name)
        tried, handled = bad_inputs(tmp)
        print(f"bad inputs: {handled}/{tried} refused with exit 2, one line, nothing written", flush=True)
        hostile_tried, mishandled, max_ms = hostile(args.fuzz)
        print(f"hostile outputs: {hostile_tried} tried, {mishandled} accepted or graded correct; "
              f"slowest grade {max_ms:.0f} ms", flush=True)
        result = kills(tmp, QUICK_KILLS if args.quick else KILLS)
    failed = (result["records_lost"] or result["records_duplicated"] or result["records_differing"]
              or result["other_differences"] or result["kills_survived"] != result["kills_tried"]
              or handled != tried or mishandled)
    print(f"records differing: {result['records_differing']}, other differences: {result['other_differences']}")
    print(f"RESULT kills_survived={result['kills_survived']} records_compared={result['records_compared']} "
          f"records_lost={result['records_lost']} records_duplicated={result['records_duplicated']} "
          f"bad_inputs_tried={tried} hostile_outputs_tried={hostile_tried} max_verify_ms={max_ms:.0f}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
