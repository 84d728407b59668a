"""What `curriculum ablate` reports: each run's numbers (from its results.json and store), and the
recipes side by side over the seeds (results.md, results.json, accuracy.png)."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curriculum.evaluation import EvalResult
from curriculum.files import atomic_write_json, atomic_write_text
from curriculum.rundir import RunLayout

# ----------------------------------------------------------------------------- results of one run


@dataclass
class RunResult:
    recipe: str
    seed: int
    run_dir: str
    wall_seconds: float  # the run, without pretraining the (shared) base model
    levels: list[int]
    base: dict[str, float]  # "overall" and "L<level>" -> held-out accuracy of the base model
    final: dict[str, float]  # the same for the final policy
    accuracy_by_round: list[float]  # overall held-out accuracy after round 0 (base), 1, 2, ...
    tokens_per_attempt: float
    attempts_per_round: float
    learner_steps_per_round: float
    extra: dict[str, float] = field(default_factory=dict)
    # Wall seconds per loop stage, summed over the run's rounds (round 0's "seed" screening included),
    # from the stage records: what each role cost. A stage killed midway is not counted.
    stage_seconds: dict[str, float] = field(default_factory=dict)
    base_model: str = ""  # the base model's folder (the recipes of one seed should share it)
    # Points lost since the base by the level (or benchmark) that lost most: in any round, and after
    # the last; `validation_*` the same on the validation set, and its final accuracies (empty without one).
    worst_drop: float = math.nan
    end_drop: float = math.nan
    validation_worst_drop: float = math.nan
    validation_end_drop: float = math.nan
    validation_final: dict[str, float] = field(default_factory=dict)


def _accuracies(evaluation: Any) -> dict[str, float]:
    out = {"overall": evaluation.accuracy}
    out.update({f"L{level}": acc for level, acc in evaluation.by_level.items() if level is not None})
    return out


def collect(run_dir: Path, recipe: str, seed: int, wall_seconds: float) -> RunResult:
    """A finished run's numbers, from its results.json and the round metrics in its store."""
    from curriculum.store import Store

    layout = RunLayout(run_dir)
    saved = json.loads(layout.results.read_text())
    base, final = EvalResult.from_dict(saved["base_eval"]), EvalResult.from_dict(saved["final_eval"])
    with Store(layout.store, read_only=True) as store:
        rows = store.con.execute("SELECT metrics, seconds FROM rounds ORDER BY round").fetchall()
        stage_records = store.stage_records()
    metrics = [dict(m) for m, _ in rows]

    def mean(key: str, *more: str) -> float:
        values = [sum(m.get(k, 0.0) for k in (key, *more)) for m in metrics if key in m]
        return sum(values) / len(values) if values else math.nan

    def worst_and_end(key: str) -> tuple[float, float]:
        values = [m[key] for m in metrics if key in m]
        return (max(values), values[-1]) if values else (math.nan, math.nan)

    def validation(m: dict[str, float]) -> dict[str, float]:
        found = {"overall": m["validation/accuracy"]} if "validation/accuracy" in m else {}
        for key, value in m.items():
            if key.startswith("validation/level_") and key.endswith("/accuracy"):
                found["L" + key.removeprefix("validation/level_").removesuffix("/accuracy")] = value
        return found

    return RunResult(
        recipe=recipe,
        seed=seed,
        run_dir=str(run_dir),
        wall_seconds=wall_seconds,
        levels=sorted(level for level in base.by_level if level is not None),
        base=_accuracies(base),
        final=_accuracies(final),
        accuracy_by_round=[base.accuracy] + [m.get("eval/accuracy", math.nan) for m in metrics],
        tokens_per_attempt=mean("tokens_per_attempt"),
        attempts_per_round=mean("attempts", "synthesis/attempts"),
        learner_steps_per_round=mean("learner/steps"),
        extra={"loop_seconds": sum(sum(dict(seconds).values()) for _, seconds in rows)},
        stage_seconds=stage_seconds(stage_records),
        base_model=str(saved.get("base_model", "")),
        **dict(zip(("worst_drop", "end_drop"), worst_and_end("retention/worst_drop"))),
        **dict(zip(("validation_worst_drop", "validation_end_drop"), worst_and_end("validation/worst_drop"))),
        validation_final=validation(metrics[-1]) if metrics else {},
    )


def stage_seconds(records: Sequence[Any]) -> dict[str, float]:
    """Seconds per stage summed over rounds. Each stage record holds its round's state, whose
    `seconds` add up the stages done so far; the round's last record has them all (the `rounds`
    table is written before its round's snapshot and checkpoint stages, so it lacks those two)."""

    last: dict[int, dict[str, Any]] = {}  # round -> its state (run/resume.py's RoundState as JSON)
    for record in records:
        state = json.loads(record.state)
        if state["round"] not in last or len(state["done"]) >= len(last[state["round"]]["done"]):
            last[state["round"]] = state
    total: dict[str, float] = {}
    for state in last.values():
        for stage, seconds in state["seconds"].items():
            total[stage] = total.get(stage, 0.0) + seconds
    return total


# Stage groups reported side by side: what a reader asks "what does the Teacher cost?" about.
STAGE_GROUPS: dict[str, tuple[str, ...]] = {
    "generation": ("attempt", "synthesize"),  # the Solver's attempts, synthesis screening included
    "training": ("learn",),  # the Learner's update, publishing it and the Solvers loading it
    "teacher + generator": ("teach", "distil"),  # variants of failures; the Generator's SFT and proposals
    "evaluation": ("evaluate",),  # greedy held-out evaluation after each round
    "seed screening": ("seed",),  # round 0: the seed candidates' attempts (the same for every recipe)
    "other": ("select", "snapshot", "checkpoint"),
}


def grouped_seconds(seconds: dict[str, float]) -> dict[str, float]:
    """Stage seconds summed per STAGE_GROUPS group; a stage in no group (a new one) goes to "other"."""
    known = {stage for stages in STAGE_GROUPS.values() for stage in stages}
    out = {group: sum(seconds.get(stage, 0.0) for stage in stages) for group, stages in STAGE_GROUPS.items()}
    out["other"] += sum(v for stage, v in seconds.items() if stage not in known)
    return out


# ----------------------------------------------------------------------------- summary


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value); NaNs are left out."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _pm(values: Sequence[float], scale: float = 100.0, digits: int = 1) -> str:
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "-"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def _shortfalls(by_recipe: dict[str, list[RunResult]], budget: dict[str, Any]) -> list[str]:
    """Lines naming each recipe that used less compute than the budget: equal compute is configured,
    but a round can run short of problems (no pool holds enough) or lose drafts before screening."""
    lines = []
    for key, label in (("attempts_per_round", "attempts"), ("learner_steps_per_round", "learner steps")):
        want = budget.get(key)
        for name, runs in by_recipe.items():
            used = statistics.fmean([getattr(r, key) for r in runs]) if runs else math.nan
            if want and used < want - 1e-9:
                lines.append(
                    f"- below budget: {name} used {used:.0f} of {want} {label} per round ({100 * used / want:.1f}%)"
                )
    return ["", *lines] if lines else []


def _base_model_lines(results: Sequence[RunResult]) -> list[str]:
    """One line: whether each seed's recipes started from one base model (as equal compute assumes)."""
    by_seed: dict[int, set[str]] = {}
    for r in results:
        by_seed.setdefault(r.seed, set()).add(Path(r.base_model).name if r.base_model else "?")
    if not by_seed:
        return []
    mixed = {seed: models for seed, models in by_seed.items() if len(models) > 1}
    if mixed:
        return [
            "",
            "**Different base models within a seed** (the recipes are not comparable there): "
            + "; ".join(f"seed {seed}: {', '.join(sorted(models))}" for seed, models in sorted(mixed.items())),
        ]
    return [
        "",
        "Base model per seed, shared by its recipes: "
        + ", ".join(f"seed {seed} `{next(iter(models))}`" for seed, models in sorted(by_seed.items()))
        + ".",
    ]


def _per_seed_table(by_recipe: dict[str, list[RunResult]], seeds: Sequence[int]) -> list[str]:
    """Final overall accuracy per recipe and seed: the recipes of a seed share its base model and
    held-out set, so differences within a column are paired."""
    if not any(by_recipe.values()):
        return []
    lines = [
        "",
        "## Final held-out accuracy per seed (%, overall; a column shares base model and held-out set)",
        "",
        "| recipe | " + " | ".join(f"seed {seed}" for seed in seeds) + " |",
        "|---|" + "---:|" * len(seeds),
    ]
    for name, runs in by_recipe.items():
        final = {r.seed: r.final["overall"] for r in runs}
        lines.append(
            f"| {name} | " + " | ".join(f"{100 * final[seed]:.1f}" if seed in final else "-" for seed in seeds) + " |"
        )
    return lines


def _retention_table(by_recipe: dict[str, list[RunResult]], levels: Sequence[int]) -> list[str]:
    """Per recipe, the points lost since the base (the level that lost most, in any round and after
    the last) and, where the runs have a validation set, the same and its final accuracy."""
    runs = [r for rs in by_recipe.values() for r in rs]
    if not any(not math.isnan(r.worst_drop) for r in runs):
        return []
    validated = any(r.validation_final for r in runs)
    columns = ["held-out worst drop", "held-out drop at end"]
    if validated:
        columns += ["validation worst drop", "validation drop at end", *[f"validation L{lv}" for lv in levels]]
        columns.append("validation overall")
    lines = ["", "## Retention (points lost since the base by the level that lost most; mean ± std over seeds)", ""]
    if validated:
        lines += ["Choose settings by the validation columns; the held-out set is the report.", ""]
    lines += [
        "| recipe | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, recipe_runs in by_recipe.items():
        if not recipe_runs:
            continue
        cells = [_pm([r.worst_drop for r in recipe_runs], 1), _pm([r.end_drop for r in recipe_runs], 1)]
        if validated:
            cells += [_pm([r.validation_worst_drop for r in recipe_runs], 1)]
            cells += [_pm([r.validation_end_drop for r in recipe_runs], 1)]
            keys = [f"L{lv}" for lv in levels] + ["overall"]
            cells += [_pm([r.validation_final.get(k, math.nan) for r in recipe_runs]) for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _seconds_table(by_recipe: dict[str, list[RunResult]]) -> list[str]:
    """Wall seconds per stage group (mean ± std over seeds), with the Teacher + Generator share."""
    runs = [r for rs in by_recipe.values() for r in rs]
    if not any(r.stage_seconds for r in runs):
        return []
    groups = list(STAGE_GROUPS)
    lines = [
        "",
        "## Wall seconds per stage (mean ± std over seeds, summed over the run's rounds)",
        "",
        "Stages: "
        + "; ".join(f"{g} = {', '.join(STAGE_GROUPS[g])}" for g in groups)
        + ". Seconds depend on the machine and its load; compare recipes run side by side.",
        "",
        "| recipe | " + " | ".join(groups) + " | total | teacher + generator share |",
        "|---|" + "---:|" * (len(groups) + 2),
    ]
    for name, recipe_runs in by_recipe.items():
        timed = [grouped_seconds(r.stage_seconds) for r in recipe_runs if r.stage_seconds]
        if not timed:
            continue
        totals = [sum(t.values()) for t in timed]
        lines.append(
            f"| {name} | "
            + " | ".join(_pm([t[g] for t in timed], 1, 0) for g in groups)
            + f" | {_pm(totals, 1, 0)}"
            + f" | {_pm([t['teacher + generator'] / total for t, total in zip(timed, totals) if total])}% |"
        )
    return lines


def results_markdown(
    results: Sequence[RunResult], recipes: Sequence[str], command: str, budget: dict[str, Any], seeds: Sequence[int]
) -> str:
    levels = sorted({lv for r in results for lv in r.levels})
    by_recipe = {name: [r for r in results if r.recipe == name] for name in recipes}
    lines = [
        "# Curriculum ablation at equal compute",
        "",
        f"Command: `{command}`",
        "",
        f"Seeds: {', '.join(map(str, seeds))} (each seed has its own base model and held-out set). "
        f"Rounds: {budget['rounds']}. Budget per round: {budget['attempts_per_round']} attempts generated, "
        f"{budget['learner_steps_per_round']} learner steps"
        + (f" of {budget['sequences_per_learner_step']} sequences" if budget.get("sequences_per_learner_step") else "")
        + "; the measured means are in the table.",
        *_base_model_lines(results),
        "",
        "## Held-out accuracy of the final policy (%, mean ± std over seeds)",
        "",
        "| recipe | runs | "
        + " | ".join(f"L{lv}" for lv in levels)
        + " | overall | change vs base | tokens/attempt | attempts/round | learner steps/round | wall time (s) |",
        "|---|---:|" + "---:|" * (len(levels) + 6),
    ]
    base_runs = {r.seed: r for r in results}.values()  # one base model per seed
    lines.append(
        "| base model | "
        + f"{len(base_runs)} | "
        + " | ".join(_pm([r.base.get(f"L{lv}", math.nan) for r in base_runs]) for lv in levels)
        + f" | {_pm([r.base['overall'] for r in base_runs])} | | | | | |"
    )
    for name, runs in by_recipe.items():
        if not runs:
            lines.append(f"| {name} | 0 | " + " | ".join("-" for _ in levels) + " | - | - | - | - | - | - |")
            continue
        lines.append(
            f"| {name} | {len(runs)} | "
            + " | ".join(_pm([r.final.get(f"L{lv}", math.nan) for r in runs]) for lv in levels)
            + f" | {_pm([r.final['overall'] for r in runs])}"
            + f" | {_pm([r.final['overall'] - r.base['overall'] for r in runs])}"
            + f" | {_pm([r.tokens_per_attempt for r in runs], 1)}"
            + f" | {_pm([r.attempts_per_round for r in runs], 1, 0)}"
            + f" | {_pm([r.learner_steps_per_round for r in runs], 1)}"
            + f" | {_pm([r.wall_seconds for r in runs], 1, 0)} |"
        )
    lines += _shortfalls(by_recipe, budget)
    rounds = max((len(r.accuracy_by_round) for r in results), default=0)
    if rounds:
        lines += [
            "",
            "## Held-out accuracy per round (%, mean ± std; round 0 is the base model)",
            "",
            "| recipe | " + " | ".join(str(i) for i in range(rounds)) + " |",
            "|---|" + "---:|" * rounds,
        ]
        for name, runs in by_recipe.items():
            cells = [_pm([r.accuracy_by_round[i] for r in runs if i < len(r.accuracy_by_round)]) for i in range(rounds)]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += _per_seed_table(by_recipe, seeds)
    lines += _retention_table(by_recipe, levels)
    lines += _seconds_table(by_recipe)
    lines += [
        "",
        "![held-out accuracy per round](accuracy.png)",
        "",
        "Runs: " + ", ".join(f"`{r.run_dir}`" for r in results),
        "",
    ]
    return "\n".join(lines)


def plot_accuracy(results: Sequence[RunResult], recipes: Sequence[str], path: Path) -> None:
    """Held-out accuracy per round, one line per recipe (mean over seeds), shaded ± std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name in recipes:
        runs = [r for r in results if r.recipe == name]
        if not runs:
            continue
        rounds = min(len(r.accuracy_by_round) for r in runs)
        stats = [mean_std([100 * r.accuracy_by_round[i] for r in runs]) for i in range(rounds)]
        xs = list(range(rounds))
        means = [m for m, _ in stats]
        ax.plot(xs, means, marker="o", label=f"{name} (n={len(runs)})")
        ax.fill_between(xs, [m - s for m, s in stats], [m + s for m, s in stats], alpha=0.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round (0 = base model)")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title("Curricula at equal compute (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def write_outputs(
    out: Path,
    results: Sequence[RunResult],
    recipes: Sequence[str],
    command: str,
    budget: dict[str, Any],
    seeds: Sequence[int],
) -> None:
    atomic_write_json(
        out / "results.json",
        {
            "command": command,
            "budget": budget,
            "seeds": list(seeds),
            "recipes": list(recipes),
            "runs": [asdict(r) for r in results],
        },
    )
    atomic_write_text(out / "results.md", results_markdown(results, recipes, command, budget, seeds))
    if results:
        plot_accuracy(results, recipes, out / "accuracy.png")
