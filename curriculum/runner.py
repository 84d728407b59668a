"""`curriculum run`: one co-evolution experiment from a recipe into its run directory.

Builds (or reuses) the base model, starts Ray, places the role actors, runs the rounds
of `loop.CoEvolution`, logs to MLflow and prints base vs final accuracy per level.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from curriculum.config import Config, flatten
from curriculum.rundir import atomic_write_json, create_run_dir


def run_experiment(config: Config, console=None) -> Path:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from agents import cluster, roles as factories
    from curriculum.loop import STAGES, CoEvolution
    from curriculum.models import load_tokenizer, prompt_for
    from curriculum.tracking import Tracker, default_tracking_uri
    from curriculum.training.sft import pretrain

    console = console or Console()
    run_dir = create_run_dir(config)
    console.print(f"run directory: [bold]{run_dir}[/bold]")
    base = pretrain(config, progress=True)
    base_path = str(base.path)

    uri = config.tracking.tracking_uri or default_tracking_uri(config.experiment.runs_dir)
    tracker = Tracker(uri, experiment=config.experiment.name, run_name=run_dir.name)
    atomic_write_json(run_dir / "mlflow.json", {"tracking_uri": uri, "run_id": tracker.run_id})
    tracker.log_params(flatten(config))
    tracker.log_metrics({**base.evaluation.metrics("eval"), "policy_version": 0}, step=0)

    cluster.start_ray(config.ray)
    roles, placement = start_roles(config, run_dir, base_path)
    status = "FAILED"
    try:
        tokenizer = load_tokenizer(base_path)
        world = factories.make_world(config)
        progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                            TimeElapsedColumn(), console=console, transient=True)
        bar = progress.add_task("", total=len(STAGES))

        def on_stage(stage: str) -> None:
            progress.update(bar, description=f"round {loop.round}: {stage}", completed=STAGES.index(stage))

        loop = CoEvolution(config, roles, world, run_dir,
                           prompt=lambda question: prompt_for(question, tokenizer), on_stage=on_stage)

        with console.status("round 0: screening seed problems with the base model"):
            seeds = loop.prepare_seeds()
        console.print(f"seed set: {seeds['seeds']} problems ({seeds['seeds_in_band']} inside the seed band, "
                      f"{seeds['seed_candidates']} screened)")
        tracker.log_metrics({f"seeds/{k}": v for k, v in seeds.items()}, step=0)

        reports = []
        for round_ in range(1, config.loop.rounds + 1):
            with progress:
                progress.reset(bar, total=len(STAGES))
                report = loop.run_round(round_)
            reports.append(report)
            tracker.log_metrics(report.metrics, step=round_)
            console.print(round_table(report))
        final = reports[-1].evaluation if reports else base.evaluation
        console.print(comparison_table(base.evaluation, final))
        atomic_write_json(run_dir / "results.json", {
            "base_model": base_path, "base_eval": base.evaluation.to_dict(), "final_eval": final.to_dict(),
            "rounds": len(reports), "policy_version": loop.policy_version})
        if reports:
            tracker.log_artifacts(run_dir / "checkpoints" / f"policy_v{loop.policy_version:04d}", "adapter")
            tracker.log_artifacts(run_dir / "snapshots" / f"round_{reports[-1].round:04d}", "snapshot")
        roles.store.call("close").result()
        status = "FINISHED"
    finally:
        tracker.finish(status)
        placement.remove()
        cluster.stop_ray()
    console.print(f"done: {run_dir}")
    return run_dir


def start_roles(config: Config, run_dir: Path, base_path: str):
    """Place one actor per role (solvers: `ray.solver.count`) in a placement group."""
    from agents import cluster, roles as factories
    from curriculum.loop import Roles

    ray_cfg = config.ray
    wanted = [("store", ray_cfg.store), ("solver", ray_cfg.solver), ("teacher", ray_cfg.teacher),
              ("learner", ray_cfg.learner)]
    if config.generator.enabled:
        wanted.append(("generator", ray_cfg.generator))
    placement = cluster.Placement(ray_cfg, wanted)
    checkpoints = run_dir / "checkpoints"
    store = placement.spawn("store", ray_cfg.store, partial(factories.make_store, str(run_dir / "store.duckdb")))
    solvers = [placement.spawn("solver", ray_cfg.solver, partial(factories.make_solver, config, base_path, f"solver-{i}"))
               for i in range(ray_cfg.solver.count)]
    teacher = placement.spawn("teacher", ray_cfg.teacher, partial(factories.make_teacher, config))
    learner = placement.spawn("learner", ray_cfg.learner,
                              partial(factories.make_learner, config, base_path, str(checkpoints / "learner")))
    generator = None
    if config.generator.enabled:
        generator = placement.spawn("generator", ray_cfg.generator,
                                    partial(factories.make_generator, config, str(checkpoints / "generator")))
    return Roles(store, solvers, teacher, learner, generator), placement


def round_table(report):
    from rich.table import Table

    table = Table(title=f"round {report.round}  (policy v{report.policy_version})", title_justify="left")
    levels = sorted(report.evaluation.by_level)
    for level in levels:
        table.add_column(f"L{level}", justify="right")
    table.add_column("all", justify="right")
    table.add_column("added", justify="left")
    table.add_column("seconds", justify="left")
    added = ", ".join(f"{k} {v}" for k, v in sorted(report.problems_by_source.items())) or "-"
    seconds = ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items())
    table.add_row(*[f"{100 * report.evaluation.by_level[lv]:.0f}" for lv in levels],
                  f"{100 * report.evaluation.accuracy:.0f}", added, seconds)
    return table


def comparison_table(base, final):
    from rich.table import Table

    table = Table(title="held-out accuracy %: base model vs final policy", title_justify="left")
    table.add_column("level")
    table.add_column("base", justify="right")
    table.add_column("final", justify="right")
    table.add_column("change", justify="right")
    for level in sorted(base.by_level):
        b, f = 100 * base.by_level[level], 100 * final.by_level.get(level, 0.0)
        table.add_row(f"L{level}", f"{b:.1f}", f"{f:.1f}", f"{f - b:+.1f}")
    table.add_row("all", f"{100 * base.accuracy:.1f}", f"{100 * final.accuracy:.1f}",
                  f"{100 * (final.accuracy - base.accuracy):+.1f}")
    return table
