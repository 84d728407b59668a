"""`curriculum run` and `curriculum resume`: one co-evolution experiment in its run directory.

Builds (or reuses) the base model, starts Ray (or, with `ray.in_process`, builds every role in
this process), places the role actors, runs the rounds of `loop.CoEvolution`, logs to MLflow
and prints base vs final accuracy per level. A resumed run continues after the last stage the
store records as complete (see `curriculum/run/resume.py`) and the same MLflow run.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from curriculum.config import Config, flatten
from curriculum.environment import describe
from curriculum.evaluation import WORST_DROP, EvalResult, worst_drop_so_far
from curriculum.faults import kill_point
from curriculum.files import atomic_write_json
from curriculum.models import check_model_path, context_length, load_tokenizer, prompt_for
from curriculum.report.tables import accuracy_table, comparison_table, round_table
from curriculum.report.tracking import Tracker, default_tracking_uri
from curriculum.roles.teacher import prompts
from curriculum.run import actors, code_version
from curriculum.run.resume import read_finished
from curriculum.rundir import (
    RunDirError,
    RunLayout,
    check_new_run_dir,
    create_run_dir,
    open_run_dir,
    run_dir_for,
)
from curriculum.store import Store
from curriculum.training.pretrain import pretrain
from curriculum.worlds import world_for
from curriculum.worlds.loading import load_named
from curriculum.worlds.prompt_limit import PromptLimit


def run_experiment(config: Config, console=None, run_dir: str | Path | None = None, pin_imports: bool = False) -> Path:
    """A new run in a new run directory (`run_dir`, default runs/<experiment>/<run_name>).

    An existing run directory is refused before anything is written: continue it with
    `resume_experiment` (`curriculum resume RUN_DIR`). The run records its code version and runs
    its Ray actors on a copy of its code (code_version.py); `pin_imports` (the CLI) makes this
    process import the rest of the package from that copy too.
    """
    check_new_run_dir(run_dir_for(config, run_dir))
    preflight(config)

    def make_run_dir() -> Path:
        made = create_run_dir(config, run_dir)
        code_version.pin(made)
        return made

    return _drive(config, make_run_dir, console, pin_imports=pin_imports)


def resume_experiment(
    run_dir: str | Path,
    console=None,
    expected: Config | None = None,
    allow_code_change: bool = False,
    pin_imports: bool = False,
) -> Path:
    """Continue a run from the last stage it completed, with the config saved in its directory.

    `expected`: refuse unless it equals the saved config (`curriculum run --resume` passes the
    config it was given, so a changed recipe is not mixed into an old run). Code other than the
    run's is refused unless `allow_code_change`; then the run continues with it (recorded).
    """
    run_dir = Path(run_dir)
    config = open_run_dir(run_dir)
    now, before = code_version.check_unchanged(run_dir, allow_code_change)
    if expected is not None and expected != config:
        saved, given = flatten(config), flatten(expected)
        keys = sorted(k for k in saved.keys() | given.keys() if saved.get(k) != given.get(k))
        raise RunDirError(
            f"{run_dir} was started with another config (differs at {', '.join(keys[:5])}); "
            f"resume it with `curriculum resume {run_dir}` or start a new run"
        )
    preflight(config, run_dir)
    _check_store(run_dir)
    if before is not None:
        print(f"note: {run_dir} ran with {before.describe()}; continuing with {now.describe()}")
    unpinned = code_version.recorded(run_dir) is None or not code_version.snapshot_dir(run_dir).is_dir()
    if before is not None or unpinned:  # a run from before code versions, or allowed to change: pin it now
        code_version.pin(run_dir, now)
    return _drive(config, lambda: run_dir, console, resumed=True, pin_imports=pin_imports)


def preflight(config: Config, run_dir: Path | None = None) -> None:
    """Check what the run will read (model path, the world's data, evaluation data sets, prompt
    files: a resumed run's own copies) before anything is written: a bad path or a malformed data
    file fails here with one line, leaving nothing behind."""

    prompt_limit = None
    if config.model.kind == "hf":
        path = config.model.path
        assert path is not None  # model.kind=hf needs model.path (the config says so first)
        check_model_path(path)
        prompt_limit = prompt_limit_for(config, path)  # problems read from files must fit the model
    world = world_for(config, prompt_limit)
    world.heldout()  # a dataset world reads its held-out sets and its seed pool here
    world.seed_candidates(1, random.Random(0))
    if config.decontamination.enabled:
        for name in config.decontamination.eval_sets:
            load_named(config, name, invalid=[] if config.world.skip_invalid else None)
    if config.uses_llm_teacher:  # every prompt file exists and names only the fields its step fills
        from curriculum.roles.teacher.llm import load_prompts

        saved = RunLayout(Path(run_dir)).prompts if run_dir is not None else None
        base = saved if saved is not None and saved.is_dir() else None
        load_prompts(config, base)
        if config.synthesis.enabled and config.synthesis.kind == "llm":
            from curriculum.roles.teacher.llm_synthesis import load_prompts as load_synthesis_prompts

            load_synthesis_prompts(config, base)


def prompt_limit_for(config: Config, base_path: str, tokenizer: Any = None) -> Any:
    """The longest prompt the run's model takes beside the most tokens the run generates."""

    max_new_tokens = max(config.solver.max_new_tokens, config.evaluation.max_new_tokens)
    return PromptLimit.for_model(
        tokenizer or load_tokenizer(base_path),
        context_length(base_path),
        max_new_tokens,
        config.world.answer_instruction,
        config.model.max_prompt_tokens,
        skip_hint="set world.skip_oversized=true to leave such problems out",
    )


def _check_store(run_dir: Path, wait_s: float = 60.0) -> None:
    """Open the run's store once here: a schema from newer code is refused with a clear line, an
    older one is migrated, before any actor starts. The store actor of a run killed a moment ago
    can still hold the file (Ray ends a dead driver's actors within seconds): wait for it, bounded."""
    import time

    from curriculum.store import Store, StoreError

    path = RunLayout(run_dir).store
    if not path.exists():
        return
    deadline, noted = time.monotonic() + wait_s, False
    while True:
        try:
            Store(path).close()
            return
        except StoreError as exc:
            if "Conflicting lock" not in str(exc) or time.monotonic() >= deadline:
                raise
            if not noted:
                print(
                    f"note: {path} is still held by another process (the store of a run that just died "
                    f"ends within seconds); waiting up to {wait_s:.0f} s"
                )
                noted = True
        time.sleep(1.0)


def _drive(config: Config, make_run_dir, console=None, resumed: bool = False, pin_imports: bool = False) -> Path:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from curriculum.run.loop import STAGES, CoEvolution

    console = console or Console()
    base_path, base_eval, base_fingerprint = prepare_base(config)
    run_dir = make_run_dir()  # after pretraining: a failed pretraining leaves no run directory behind
    if pin_imports:
        code_version.use_snapshot(run_dir)
    console.print(f"{'resuming' if resumed else 'run directory:'} [bold]{run_dir}[/bold]")

    tracker = _tracker(config, run_dir, Tracker, default_tracking_uri)
    pinned = code_version.recorded(run_dir)
    if pinned is not None:
        tracker.set_tags(pinned.tags())
    logged = tracker.logged_steps("policy_version")
    tracing = _save_prompts(config, run_dir, tracker) if config.uses_llm_teacher else None

    roles, placement = actors.start(config, run_dir, base_path, tracing)
    status = "FAILED"
    try:
        tokenizer = load_tokenizer(base_path)
        # Problems read from files must fit the model (a real one; the toy model's world writes its own).
        limit = prompt_limit_for(config, base_path, tokenizer) if config.model.kind == "hf" else None
        world = world_for(config, limit)
        world.seed_candidates(1, random.Random(0))  # the seed pool read now: its oversized lines are counted
        progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        bar = progress.add_task("", total=len(STAGES))

        def on_stage(stage: str) -> None:
            if stage in STAGES:
                progress.update(bar, description=f"round {loop.round}: {stage}", completed=STAGES.index(stage))

        loop = CoEvolution(
            config,
            roles,
            world,
            run_dir,
            on_stage=on_stage,
            prompt=lambda question: prompt_for(question, tokenizer, world.instruction),
        )
        actors.restore_on_restart(roles, loop.restore)
        state = loop.resume()
        finished = read_finished(roles.store, logged)
        if state is not None:
            where = "seeds" if state.round == 0 else f"round {state.round}"
            console.print(f"resuming after {where}: {state.done[-1]} (policy v{state.policy_version})")

        if 0 not in finished.rounds:
            what = "evaluating the base model and screening" if base_eval is None else "screening"
            with console.status(f"round 0: {what} seed problems with the base model"):
                finished.states[0] = loop.prepare_seeds(evaluate_base=base_eval is None)
            seeds = finished.states[0].metrics
            console.print(
                f"seed set: {seeds['seeds']} problems ({seeds['seeds_in_band']} inside the seed band, "
                f"{seeds['seed_candidates']} screened)"
            )
        if base_eval is None:  # a real model: evaluated by the Solver in round 0
            assert finished.states[0].evaluation is not None  # round 0 evaluated it
            base_eval = EvalResult.from_dict(finished.states[0].evaluation)
            console.print(accuracy_table(base_eval, world.report_by, "held-out accuracy % of the base model (v0)"))
        loop.base_evaluation = base_eval  # each round reports what it lost since the base (retention/...)
        if finished.states[0].validation is not None:  # and on the validation set (validation/...)
            loop.base_validation = EvalResult.from_dict(finished.states[0].validation)
        left_out = world.left_out()
        skipped = left_out.oversized  # problems left out whose prompt does not fit the model
        if skipped:
            console.print(
                f"note: skipped {len(skipped)} problems whose prompt does not fit the model "
                f"(world.skip_oversized; first: {skipped[0]})"
            )
        invalid = left_out.invalid  # records left out without an answer
        if invalid:
            console.print(
                f"note: skipped {len(invalid)} records with no answer by their dataset's extraction rule "
                f"(world.skip_invalid; first: {invalid[0]})"
            )
        if 0 not in logged:
            tracker.log_metrics(
                {
                    **base_eval.metrics("eval"),
                    "policy_version": 0,
                    "data/skipped_oversized": len(skipped),
                    "data/skipped_invalid": len(invalid),
                },
                step=0,
            )
        if not tracker.logged_steps("seeds/seeds"):
            tracker.log_metrics(
                {
                    (k if k.startswith("verify/") else f"seeds/{k}"): v  # verify/*: every round's
                    for k, v in finished.states[0].metrics.items()
                    if not k.startswith("eval/") and k != "policy_version"
                },
                step=0,
            )
        drops = finished.worst_drops  # {round: retention/worst_drop}, the rounds so far
        for round_, done in sorted(finished.states.items()):  # rounds whose metrics a crash kept from MLflow
            if round_ > 0 and round_ not in logged:
                so_far = worst_drop_so_far(drop for r, drop in drops.items() if r <= round_)
                tracker.log_metrics({**done.metrics, **so_far}, step=round_)

        reports = []
        for round_ in range(1, config.loop.rounds + 1):
            if round_ in finished.rounds:
                continue
            with progress:
                progress.reset(bar, total=len(STAGES))
                report = loop.run_round(round_, state if state is not None and state.round == round_ else None)
            reports.append(report)
            kill_point("round:before-log", round_)
            if WORST_DROP in report.metrics:
                drops[round_] = report.metrics[WORST_DROP]
            so_far = worst_drop_so_far(drops.values())
            tracker.log_metrics({**report.metrics, **so_far}, step=round_)
            console.print(round_table(report, world.report_by))
        final = _final_evaluation(base_eval, reports, finished.states)
        console.print(comparison_table(base_eval, final, world.report_by))
        environment = describe()
        if base_fingerprint:
            console.print(
                f"base model fingerprint {base_fingerprint}, lock {environment['lock']}, "
                f"{environment['cpu']} ({environment['threads']} threads)"
            )
        last_round = max([r.round for r in reports] + [r for r in finished.rounds if r > 0], default=0)
        atomic_write_json(
            RunLayout(run_dir).results,
            {
                "base_model": base_path,
                "base_fingerprint": base_fingerprint,
                "environment": environment,
                "base_eval": base_eval.to_dict(),
                "final_eval": final.to_dict(),
                "rounds": last_round,
                "policy_version": loop.policy_version,
                "skipped_oversized": {"count": len(skipped), "lines": skipped[:20]},
                "skipped_invalid": {"count": len(invalid), "lines": invalid[:20]},
            },
        )
        if last_round:
            tracker.log_artifacts(RunLayout(run_dir).policy(loop.policy_version), "adapter")
            tracker.log_artifacts(RunLayout(run_dir).snapshots, "snapshots")  # store/snapshots.py opens it
        roles.store.call(Store.close).result()
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"  # stopped by the user; `curriculum resume` continues it
        raise
    finally:
        tracker.finish(status)
        actors.stop(roles, placement)
    console.print(f"done: {run_dir}")
    return run_dir


def _save_prompts(config: Config, run_dir: Path, tracker) -> Any:
    """The LLM workflows' prompt files go into the run directory (a resumed run keeps the copies it
    started with) and to MLflow (artifacts `prompts/`, params `prompts.<step>` = id@sha); returns
    where the workflows' traces go."""
    from curriculum.roles.teacher.llm import prompt_paths

    paths = prompt_paths(config)
    folder = prompts.save_prompts(paths, RunLayout(run_dir).prompts)
    tracker.log_artifacts(folder, "prompts")
    tracker.log_params(
        {
            f"prompts.{step}": prompts.load(path, frozenset(), folder, check_fields=False).template
            for step, path in paths.items()
        }
    )
    return tracker.trace_target()


def prepare_base(config: Config) -> tuple[str, Any, str | None]:
    """(base model path, its held-out evaluation or None, its weights' fingerprint or None). The toy
    model is built (or reused) and evaluated here; a real model (`model.kind: hf`) is `model.path`
    as it is, evaluated by the Solver in round 0."""
    if config.model.kind == "hf":
        return str(config.model.path), None, None

    base = pretrain(config, progress=True)
    return str(base.path), base.evaluation, base.fingerprint


def _tracker(config: Config, run_dir: Path, Tracker, default_tracking_uri):
    """The run's MLflow run: the one named in mlflow.json (a resumed run), else a new one."""
    saved_file = RunLayout(run_dir).mlflow
    if saved_file.is_file():
        saved = json.loads(saved_file.read_text())
        tracker = Tracker(
            saved["tracking_uri"], experiment=config.experiment.name, run_name=run_dir.name, run_id=saved["run_id"]
        )
    else:
        uri = config.tracking.tracking_uri or default_tracking_uri(config.experiment.runs_dir)
        tracker = Tracker(uri, experiment=config.experiment.name, run_name=run_dir.name)
        atomic_write_json(saved_file, {"tracking_uri": uri, "run_id": tracker.run_id})  # at once: resume finds it
    tracker.log_params(flatten(config))  # the same values again on resume (MLflow accepts that)
    return tracker


def _final_evaluation(base: Any, reports: list, finished: dict) -> Any:

    if reports:
        return reports[-1].evaluation
    done = [state for round_, state in sorted(finished.items()) if round_ > 0 and state.evaluation]
    return EvalResult.from_dict(done[-1].evaluation) if done else base
