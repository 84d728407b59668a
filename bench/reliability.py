"""Crash safety and input hardening, measured end to end; every case counted is a case checked.

1. Driver kills: an uninterrupted tiny run, then the same run SIGKILLed at every kill point of
   `curriculum.faults` in turn (each stage's commit, mid-learn, mid-checkpoint, before the
   MLflow log...), resumed after each kill with `curriculum resume`; once with every role in the
   driver process (`ray.in_process=true`) and once with the real actor setup (local Ray). Every
   record of the two stores is compared by key (timings aside); the adapters, the final
   evaluation and the MLflow history must match too. A kill counts as survived when the process
   died there and the finished run equals the uninterrupted one.
2. Actor kills: the same run on Ray with role actors killed (`ray.kill`, CURRICULUM_KILL_ACTOR)
   during the methods the loop calls, every kind (store, solver, teacher, learner, generator) and
   phase (as the call is sent, after it ran, after it answered); it must equal the uninterrupted
   Ray run. An actor kill counts as survived when it happened and the run equals the reference.
3. Bad inputs: config, data, model-path, run-directory and oversized-problem mistakes through the
   CLI, each expected to exit 2 with one line and write nothing.
4. Hostile model output: drafts through the admission gate (each must be rejected), pathological
   completions graded against references (each must be graded wrong within the time bound), and
   hypothesis-generated text through extraction + verification, each case checked: extraction
   gives None or text under every rule, grading answers in bounded time with a bool per item, a
   correct grade has an extracted answer, and a completion without a digit never equals 73519.

Ends with `RESULT kills_survived=… actor_kills_survived=… records_compared=… records_lost=…
records_duplicated=… bad_inputs_tried=… hostile_outputs_checked=… max_verify_ms=…`; exits 1 if
anything was lost, duplicated, changed, accepted or mishandled that should not be.

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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from curriculum import faults  # noqa: E402

TINY = [
    "model.tiny.hidden_size=32",
    "model.tiny.num_layers=2",
    "model.tiny.num_heads=2",
    "model.tiny.num_kv_heads=1",
    "model.tiny.intermediate_size=64",
    "pretrain.examples=128",
    "pretrain.batch_size=32",
    "world.families=[add,sub]",
    "world.max_level=3",
    "world.heldout_per_level=3",
    "world.seed_set_size=12",
    "selection.seed_candidates=24",
    "solver.attempts=4",
    "solver.max_new_tokens=48",
    "evaluation.max_new_tokens=48",
    "loop.rounds=2",
    "loop.problems_per_round=8",
    "generator.warmup_rounds=0",
    "generator.proposals_per_round=4",
    "teacher.max_failures=4",
    "ray.num_cpus=2",
    "ray.max_restarts=16",  # ACTOR_KILLS restart the store actor 10 times
]
# In run order: each resumed process is killed at the next point.
KILLS = [
    "commit:seed@0",
    "commit:select@1",
    "commit:attempt@1",
    "learn:after-update@1",
    "commit:learn@1",
    "commit:teach@1",
    "commit:synthesize@1",
    "commit:distil@1",
    "commit:evaluate@1",
    "commit:snapshot@1",
    "checkpoint:before-latest@1",
    "commit:checkpoint@1",
    "round:before-log@1",
    "stage:attempt@2",
    "commit:distil@2",
]
QUICK_KILLS = [
    "commit:attempt@1",
    "learn:after-update@1",
    "commit:snapshot@1",
    "checkpoint:before-latest@1",
    "commit:distil@2",
]
RAY_KILLS = [
    "commit:seed@0",
    "commit:attempt@1",
    "learn:after-update@1",
    "commit:distil@1",
    "commit:checkpoint@1",
    "commit:learn@2",
]
QUICK_RAY_KILLS = ["learn:after-update@1", "commit:distil@1"]
ACTOR_KILLS = faults.EVERY_ACTOR_METHOD
QUICK_ACTOR_KILLS = [
    "store.append#4:done",
    "solver.attempt#2:done",
    "teacher.teach#1:sent",
    "learner.learn#1:idle",
    "learner.publish#2:done",
    "generator.train#1:done",
]
KILL_LINE = "fault injection: killing the"  # agents/proxy.py logs one per actor kill


@dataclass
class Outcome:
    """What one kind of kill test checked."""

    survived: int = 0
    tried: int = 0
    compared: int = 0
    lost: int = 0
    duplicated: int = 0
    differing: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.differing or self.problems)


def curriculum(args: list[str], kill_at: str | None = None, kill_actors: list[str] = ()) -> tuple[int, str]:
    """(exit code, stderr) of a CLI run with the given fault injection."""
    env = {k: v for k, v in os.environ.items() if k not in ("CURRICULUM_KILL_AT", "CURRICULUM_KILL_ACTOR")}
    if kill_at:
        env["CURRICULUM_KILL_AT"] = kill_at
    if kill_actors:
        env["CURRICULUM_KILL_ACTOR"] = ",".join(kill_actors)
    done = subprocess.run(
        [sys.executable, "-m", "curriculum.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if done.returncode not in (0, -signal.SIGKILL):
        print(done.stderr[-3000:], file=sys.stderr)
    return done.returncode, done.stderr


def compare_runs(reference: Path, other: Path, outcome: Outcome) -> None:
    """Records, adapters, final evaluation and MLflow history of `other` against `reference`."""
    from mlflow.tracking import MlflowClient

    from curriculum.run.resume import compare_stores

    comparison = compare_stores(reference / "store.duckdb", other / "store.duckdb")
    for line in comparison.details[:20]:
        print("  ", line)
    outcome.compared += comparison.compared
    outcome.lost += comparison.lost
    outcome.duplicated += comparison.duplicated
    outcome.differing += comparison.differing
    for version in (1, 2):
        name = f"checkpoints/policy_v{version:04d}/adapter_model.safetensors"
        if (reference / name).read_bytes() != (other / name).read_bytes():
            outcome.problems.append(f"adapter v{version} differs")
    ref_results, got_results = (json.loads((d / "results.json").read_text()) for d in (reference, other))
    if ref_results["final_eval"] != got_results["final_eval"]:
        outcome.problems.append("final evaluation differs")
    tracking = [json.loads((d / "mlflow.json").read_text()) for d in (reference, other)]
    client = MlflowClient(tracking_uri=tracking[1]["tracking_uri"])
    for key in ("policy_version", "eval/accuracy", "learner/loss", "seeds/seeds"):
        want, got = (sorted((m.step, m.value) for m in client.get_metric_history(t["run_id"], key)) for t in tracking)
        if want != got:
            outcome.problems.append(f"MLflow {key}: {got} vs {want}")
    for line in outcome.problems:
        print("  ", line)


def reference_run(tmp: Path, common: list[str], name: str) -> Path:
    reference = tmp / name
    start = time.perf_counter()
    code, _ = curriculum([*common, "--run-dir", str(reference)])
    if code != 0:
        raise SystemExit(f"the uninterrupted run {name} failed")
    print(f"uninterrupted run ({name}): {time.perf_counter() - start:.0f} s", flush=True)
    return reference


def driver_kills(tmp: Path, common: list[str], reference: Path, points: list[str], name: str) -> Outcome:
    """The run SIGKILLed at each point in turn, resumed after each; compared with `reference`."""
    killed, outcome = tmp / name, Outcome(tried=len(points))
    died = 0
    start = time.perf_counter()
    for i, point in enumerate(points):
        args = [*common, "--run-dir", str(killed)] if i == 0 else ["resume", str(killed)]
        code, _ = curriculum(args, kill_at=point)
        died += code == -signal.SIGKILL
        print(
            f"{name}: killed at {point:<26} {'ok' if code == -signal.SIGKILL else f'NOT KILLED (exit {code})'}",
            flush=True,
        )
    code, _ = curriculum(["resume", str(killed)])
    if code != 0:
        outcome.problems.append(f"{name}: the final resume failed (exit {code})")
        return outcome
    print(f"{name}: {len(points)} kills and resumes in {time.perf_counter() - start:.0f} s", flush=True)
    compare_runs(reference, killed, outcome)
    outcome.survived = died if outcome.clean else 0
    return outcome


def actor_kills(tmp: Path, common: list[str], reference: Path, kills: list[str]) -> Outcome:
    """One Ray run with role actors killed as `kills` say; compared with the uninterrupted Ray run."""
    killed, outcome = tmp / "ray-actor-kills", Outcome(tried=len(kills))
    start = time.perf_counter()
    code, stderr = curriculum([*common, "--run-dir", str(killed)], kill_actors=kills)
    fired = stderr.count(KILL_LINE)
    print(
        f"actor kills: {fired}/{len(kills)} happened, run exit {code}, {time.perf_counter() - start:.0f} s", flush=True
    )
    if code != 0:
        outcome.problems.append(f"the run with actor kills failed (exit {code})")
        return outcome
    if fired != len(kills):
        outcome.problems.append(f"only {fired} of {len(kills)} actor kills happened")
    compare_runs(reference, killed, outcome)
    outcome.survived = fired if outcome.clean else 0
    return outcome


def bad_inputs(tmp: Path) -> tuple[int, int]:
    """(tried, handled): handled = exit 2, one line, nothing written."""
    from curriculum import cli
    from curriculum.testing.random_qwen import build

    data = tmp / "data"
    data.mkdir()
    files = {
        "bad_line": b'{"question": "1+1", "answer": "2"}\n{"question": oops}\n',
        "no_field": b'{"question": "1+1"}\n',
        "empty": b"",
        "array": b'[{"question": "1", "answer": "1"}]\n',
        "binary": bytes(range(256)) * 8,
    }
    for name, content in files.items():
        (data / f"{name}.jsonl").write_bytes(content)
    # A 5,000,000-character question: refused at load with its line, never generated from.
    huge = data / "huge.jsonl"
    huge.write_text(
        json.dumps({"question": "1+1=?", "answer": "#### 2"})
        + "\n"
        + json.dumps({"question": "What is " + "1+" * 2_500_000 + "1?", "answer": "#### 2"})
        + "\n"
    )
    qwen = build(tmp / "random-qwen")
    tiny = str(ROOT / "configs/tiny.yaml")
    cases = [
        [o]
        for o in (
            "solver.atempts=3",
            "solvr.attempts=3",
            "solver.attempts=many",
            "solver.attempts=0",
            "selection.band_low=0.875",
            "selection.band_low=0.3",
            "loop.rounds=-1",
            "loop.rounds",
            "learner.learning_rate=-1",
            "solver.top_p=2",
            "model.kind=hf",
            "decontamination.eval_sets=[nope]",
        )
    ]
    cases.append(["model.kind=hf", "model.path=/no/such/model"])
    cases += [
        [f"data_root={data}", f"datasets.bad.path={name}.jsonl", "decontamination.eval_sets=[bad]"]
        for name in [*files, "missing"]
    ]
    runs = tmp / "bad-runs"
    argvs = [["run", tiny, f"experiment.runs_dir={runs}", *case] for case in cases]
    argvs.append(
        [
            "run",
            str(ROOT / "configs/gsm8k_qwen.yaml"),
            f"experiment.runs_dir={runs}",
            f"model.path={qwen}",
            "solver.engine=hf",  # the recipe's vLLM is not installed on CPU
            f"datasets.gsm8k_train.path={huge}",
        ]
    )
    argvs.append(["run", str(tmp / "no_such.yaml")])
    existing = tmp / "existing"
    existing.mkdir()
    (existing / "config.yaml").write_text("{}\n")
    argvs += [["run", tiny, "--run-dir", str(existing)], ["resume", str(tmp / "nowhere")], ["resume", str(data)]]
    report = tmp / "eval-report.json"
    argvs.append(["eval", str(qwen), "--dataset", str(huge), "--max-new-tokens", "8", "--out", str(report)])
    handled = 0
    for argv in argvs:
        err = io.StringIO()
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            code = cli.main(argv)
        lines = err.getvalue().strip().splitlines()
        ok = (
            code == 2
            and len(lines) == 1
            and not runs.exists()
            and not report.exists()
            and [p.name for p in existing.iterdir()] == ["config.yaml"]
        )
        handled += ok
        if not ok:
            print(f"bad input NOT handled: {argv[2:] or argv}: exit {code}, {lines}")
    return len(argvs), handled


def hostile(fuzz_cases: int) -> tuple[int, int, float]:
    """(checked, mishandled, slowest grade in ms): every case counted had its outcome checked."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from curriculum.config import from_dict
    from curriculum.curricula import admission
    from curriculum.records import Problem
    from curriculum.verify import Verifier, extract_answer
    from curriculum.worlds.arithmetic import ArithmeticWorld

    world = ArithmeticWorld(from_dict({"world": {"families": ["add"], "max_level": 2}}).world, seed=0)
    stored, heldout = world.seed_problems()[0], world.heldout()[0]

    def draft(question, answer="86", **kw):
        return Problem(question=question, answer=answer, source="teacher", parent_id="p", round_created=1, **kw)

    drafts = [
        draft("   "),
        draft("1+1=?", answer=""),
        draft("9" * 1_000_000 + "+1=?"),
        draft("2+2=?", "4\ud800"),
        draft("12+30=?\x00", "42"),
        draft("import os; os.system('x')", "0"),
        draft(stored.question, stored.answer),
        draft(heldout.question, heldout.answer),
        draft("40+2=?", "41"),
        draft("{" * 10_000, "1"),
    ]
    accepted, rejected = admission.screen(drafts, {stored.id}, {heldout.id}, world, "teacher", 1)
    mishandled = len(accepted) + (len(rejected) != len(drafts))  # each draft: rejected, with a reason
    checked = len(drafts)

    completions = [
        "answer: " + "9" * 1_000_000,
        "\\boxed{" + "1" * 1_000_000 + "}",
        "x" * 1_000_000,
        "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
        "\\boxed{" + "\\frac{" * 3000 + "1" + "}" * 3000 + "}",
        "\\boxed{2^{2^{2^{2^{2^{2}}}}}}",
        "answer: 9^9^9^9^9",
        "answer: 2**2**2**2**2**2",
        "\\boxed{9^{9^{9}}}",
        "\\boxed{\\frac{1}{2}",
        "answer: }}}{{{",
        "\\boxed{" * 10_000,
        "answer: \\left( \\right( \\left[",
        "answer: __import__('os').system('echo pwned')",
        "```python\nimport os\nos.remove('x')\n```\nanswer: os.remove('x')",
        "answer: $$$$\\",
        "\\boxed{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{2}}}}}}}}",
        "answer: 10^{10^{10}}",
        "answer: \\int_0^\\infty e^{-x^2} dx",
        "answer: 1e999999",
        "answer: " + "(1+" * 300 + "1" + ")" * 300,
    ]
    timeout_s = 2.0
    bound_s = timeout_s + 30.0  # a grade's timeout, plus restarting the grading worker after a kill
    times: list[float] = []
    rules = ("auto", "boxed", "gsm8k", "answer_colon", "last_number", "none")
    with Verifier(timeout_s=timeout_s) as verifier:
        verifier.grade("answer: \\frac{1}{2}", "0.5")  # start the worker outside the timings
        for completion in completions:
            for reference in ("3", "\\frac{1}{2}", "x^2"):
                start = time.perf_counter()
                correct = verifier.grade(completion, reference, "auto").correct
                times.append(time.perf_counter() - start)
                mishandled += correct or times[-1] > bound_s
                checked += 1

        text = st.one_of(
            st.text(max_size=200),
            st.lists(
                st.sampled_from(
                    [
                        "\\boxed{",
                        "}",
                        "{",
                        "^",
                        "^{",
                        "\\frac{",
                        "answer:",
                        "####",
                        "$",
                        "(",
                        ")",
                        "1",
                        "9" * 30,
                        "x",
                        "**",
                        "\\sqrt{",
                        "\n",
                        " ",
                    ]
                ),
                max_size=40,
            ).map("".join),
        )
        outcomes = {"checked": 0, "mishandled": 0}

        @settings(max_examples=fuzz_cases, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(text, text)
        def fuzz(completion, reference):
            ok = all(
                (found := extract_answer(completion, rule)) is None or (isinstance(found, str) and found)
                for rule in rules
            )
            start = time.perf_counter()
            grades = verifier.grade_many([completion, reference, completion], [reference, reference, "73519"], "auto")
            times.append(time.perf_counter() - start)
            ok = ok and times[-1] < bound_s and len(grades) == 3
            ok = ok and all(isinstance(g.correct, bool) and (g.extracted is not None or not g.correct) for g in grades)
            ok = ok and not (grades[2].correct and not any(c.isdigit() for c in completion))
            outcomes["checked"] += 1
            outcomes["mishandled"] += not ok
            if not ok:
                print(f"hostile output mishandled: {completion[:80]!r} vs {reference[:80]!r}: {grades}")

        fuzz()
    return checked + outcomes["checked"], mishandled + outcomes["mishandled"], 1000 * max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{len(QUICK_KILLS)} kill points in process, {len(QUICK_RAY_KILLS)} on Ray and "
        f"{len(QUICK_ACTOR_KILLS)} actor kills",
    )
    parser.add_argument("--fuzz", type=int, default=2000, help="hypothesis cases through extraction + verification")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reliability-") as name:
        tmp = Path(name)
        tried, handled = bad_inputs(tmp)
        print(f"bad inputs: {handled}/{tried} refused with exit 2, one line, nothing written", flush=True)
        hostile_checked, mishandled, max_ms = hostile(args.fuzz)
        print(
            f"hostile outputs: {hostile_checked} checked, {mishandled} mishandled; slowest grade {max_ms:.0f} ms",
            flush=True,
        )
        common = [
            "run",
            "configs/tiny.yaml",
            *TINY,
            f"experiment.runs_dir={tmp / 'runs'}",
            f"model.cache_dir={tmp / 'cache'}",
        ]
        in_process = [*common, "ray.in_process=true"]
        outcomes = {
            "in process": driver_kills(
                tmp,
                in_process,
                reference_run(tmp, in_process, "reference"),
                QUICK_KILLS if args.quick else KILLS,
                "killed",
            ),
        }
        ray_reference = reference_run(tmp, common, "ray-reference")
        outcomes["ray driver"] = driver_kills(
            tmp, common, ray_reference, QUICK_RAY_KILLS if args.quick else RAY_KILLS, "ray-killed"
        )
        outcomes["ray actors"] = actor_kills(
            tmp, common, ray_reference, QUICK_ACTOR_KILLS if args.quick else ACTOR_KILLS
        )
    drivers = [o for kind, o in outcomes.items() if kind != "ray actors"]
    total = Outcome(
        survived=sum(o.survived for o in drivers),
        tried=sum(o.tried for o in drivers),
        compared=sum(o.compared for o in outcomes.values()),
        lost=sum(o.lost for o in outcomes.values()),
        duplicated=sum(o.duplicated for o in outcomes.values()),
        differing=sum(o.differing for o in outcomes.values()),
        problems=[p for o in outcomes.values() for p in o.problems],
    )
    actors = outcomes["ray actors"]
    failed = (
        not total.clean
        or total.survived != total.tried
        or actors.survived != actors.tried
        or handled != tried
        or mishandled
    )
    for kind, outcome in outcomes.items():
        print(f"{kind}: {outcome.survived}/{outcome.tried} kills survived, {outcome.compared} records compared")
    print(f"records differing: {total.differing}, other differences: {len(total.problems)}")
    print(
        f"RESULT kills_survived={total.survived} actor_kills_survived={actors.survived} "
        f"records_compared={total.compared} records_lost={total.lost} records_duplicated={total.duplicated} "
        f"bad_inputs_tried={tried} hostile_outputs_checked={hostile_checked} max_verify_ms={max_ms:.0f}"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
