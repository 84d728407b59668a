"""`curriculum ablate`: recipes side by side at equal compute, over several seeds.

Each recipe (a YAML config) runs once per seed, one run after another, into
OUT/runs/<experiment>/seed<N>. Before anything runs, the recipes must agree on a round's compute:
the same rounds, the same attempts generated per round (loop.problems_per_round x
solver.attempts, synthesized drafts' screening included), the same learner steps per round
(learner.steps_per_round, which must be set) and the same sequences with a gradient per step (a
DPO pair is two sequences, a GRPO group solver.attempts, an SFT example one). The measured counts
are reported beside the results, so the claim is checked. Wall seconds are not part of the budget:
they are measured per stage and reported, so a reader sees what each role costs.

Writes, updated after every run:
- OUT/results.json: per run, the held-out accuracy per round and level and the compute used;
- OUT/results.md: final held-out accuracy per level and overall, mean ± std over seeds (sample
  std), with tokens per attempt, attempts and learner steps per round, and wall time; the wall
  seconds per stage group (generation, training, Teacher + Generator, ...); and whether the
  recipes of each seed started from the same base model;
- OUT/accuracy.png: held-out accuracy per round, one line per recipe, shaded ± std.

A finished run (results.json in its folder) is reused and an interrupted one resumed, so an
interrupted ablation continues where it stopped when run again with the same arguments.
"""

from __future__ import annotations

import json
import math
import shlex
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curriculum.config import Config, load_config
from curriculum.errors import CurriculumError
from curriculum.files import atomic_write_json, atomic_write_text
from curriculum.rundir import RunLayout, is_run_dir, run_dir_for


class AblationError(CurriculumError):
    """Recipes that cannot be compared as asked; the message says which setting differs."""


@dataclass(frozen=True)
class Recipe:
    name: str  # the config file's stem
    path: str
    config: Config  # with the shared overrides, before the per-seed ones


def sequences_per_step(config: Config) -> int:
    """Sequences that get a gradient in one learner step: `learner.batch_size` counts DPO pairs
    (a chosen and a rejected sequence each) but SFT examples (one each), and GRPO steps take
    `groups_per_step` groups of solver.attempts. (DPO also scores its pairs under the frozen
    reference, without a gradient; the measured training seconds show that cost.)"""
    learner = config.learner
    per_algorithm = {
        "dpo": lambda: 2 * learner.batch_size,
        "sft": lambda: learner.batch_size,
        "grpo": lambda: learner.grpo.groups_per_step * config.solver.attempts,
    }
    if learner.algorithm not in per_algorithm:
        raise AblationError(f"learner.algorithm={learner.algorithm}: ablate does not know its sequences per step")
    return per_algorithm[learner.algorithm]()


def compute_budget(config: Config) -> dict[str, int | None]:
    """What one run spends: rounds, attempts generated per round, learner steps per round and
    sequences per learner step."""
    return {
        "rounds": config.loop.rounds,  # synthesis screening is part of problems_per_round
        "attempts_per_round": config.loop.problems_per_round * config.solver.attempts,
        "learner_steps_per_round": config.learner.steps_per_round,
        "sequences_per_learner_step": sequences_per_step(config),
    }


def check_equal_compute(recipes: Sequence[Recipe]) -> dict[str, int | None]:
    """The common budget of the recipes, or an AblationError naming the first difference."""
    budgets = {r.name: compute_budget(r.config) for r in recipes}
    for recipe in recipes:
        if recipe.config.learner.steps_per_round is None:
            raise AblationError(
                f"{recipe.path}: learner.steps_per_round is not set, so the learner's updates per "
                "round depend on the data; set it (configs/ablation_base.yaml does)"
            )
    first = recipes[0].name
    for name, budget in budgets.items():
        for key, value in budget.items():
            if value != budgets[first][key]:
                raise AblationError(
                    f"unequal compute: {key} is {budgets[first][key]} for {first} but {value} "
                    f"for {name}; make the recipes agree ({_BUDGET_HINTS[key]})"
                )
    return budgets[first]


_BUDGET_HINTS = {
    "rounds": "loop.rounds",
    "attempts_per_round": "loop.problems_per_round x solver.attempts; see configs/ablation_base.yaml",
    "learner_steps_per_round": "learner.steps_per_round",
    "sequences_per_learner_step": "learner.batch_size counts DPO pairs of 2 sequences but single SFT examples; "
    "GRPO: learner.grpo.groups_per_step x solver.attempts",
}


def load_recipes(paths: Sequence[str], overrides: Sequence[str]) -> list[Recipe]:
    recipes = [Recipe(Path(p).stem, str(p), load_config(p, list(overrides))) for p in paths]
    names = [r.name for r in recipes]
    if len(set(names)) < len(names):
        raise AblationError(f"two recipes share a file name ({', '.join(names)}); the name labels the results")
    experiments = [r.config.experiment.name for r in recipes]
    if len(set(experiments)) < len(experiments):
        raise AblationError(
            f"two recipes share experiment.name ({', '.join(experiments)}); their runs would "
            "collide: give each recipe its own"
        )
    return recipes


def seed_config(recipe: Recipe, seed: int, out: Path) -> Config:
    data = recipe.config.model_dump(mode="json")
    data["experiment"].update(seed=seed, runs_dir=str(out / "runs"), run_name=f"seed{seed}")
    return Config.model_validate(data)


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


def _accuracies(evaluation: Any) -> dict[str, float]:
    out = {"overall": evaluation.accuracy}
    out.update({f"L{level}": acc for level, acc in evaluation.by_level.items() if level is not None})
    return out


def collect(run_dir: Path, recipe: str, seed: int, wall_seconds: float) -> RunResult:
    """A finished run's numbers, from its results.json and the round metrics in its store."""
    from curriculum.evaluation import EvalResult
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
    )


def stage_seconds(records: Sequence[Any]) -> dict[str, float]:
    """Seconds per stage summed over rounds. Each stage record holds its round's state, whose
    `seconds` add up the stages done so far; the round's last record has them all (the `rounds`
    table is written before its round's snapshot and checkpoint stages, so it lacks those two)."""
    from curriculum.run.resume import RoundState

    last: dict[int, RoundState] = {}
    for record in records:
        state = RoundState.from_json(record.state)
        if state.round not in last or len(state.done) >= len(last[state.round].done):
            last[state.round] = state
    total: dict[str, float] = {}
    for state in last.values():
        for stage, seconds in state.seconds.items():
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


# ----------------------------------------------------------------------------- driver


def run_ablation(
    paths: Sequence[str],
    overrides: Sequence[str],
    seeds: int,
    out: str | Path,
    command: str | None = None,
    console: Any = None,
) -> Path:
    """Run every recipe for `seeds` seeds (experiment.seed, +1, ...) one after another; see the module doc."""
    from rich.console import Console

    from curriculum.run.runner import resume_experiment, run_experiment
    from curriculum.training.pretrain import pretrain

    console = console or Console()
    if seeds < 1:
        raise AblationError(f"--seeds must be at least 1, got {seeds}")
    recipes = load_recipes(paths, overrides)
    budget = check_equal_compute(recipes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    command = command or "curriculum ablate " + " ".join(shlex.quote(a) for a in [*paths, *overrides])
    first_seed = recipes[0].config.experiment.seed
    seed_list = [first_seed + i for i in range(seeds)]
    plan = [(seed, recipe) for seed in seed_list for recipe in recipes]  # seed-major: one base model at a time
    names = [r.name for r in recipes]
    results: list[RunResult] = []
    start = time.perf_counter()
    timed: list[float] = []
    for index, (seed, recipe) in enumerate(plan, 1):
        config = seed_config(recipe, seed, out)
        run_dir = run_dir_for(config)
        elapsed = time.perf_counter() - start
        eta = f", about {(len(plan) - index + 1) * statistics.fmean(timed) / 60:.0f} min left" if timed else ""
        console.rule(
            f"[bold]ablation run {index}/{len(plan)}: {recipe.name}, seed {seed}[/bold] "
            f"({elapsed / 60:.1f} min so far{eta})"
        )
        if RunLayout(run_dir).results.is_file():
            console.print(f"finished before: reusing {run_dir}")
            timing = run_dir / "ablation.json"
            wall = json.loads(timing.read_text())["wall_seconds"] if timing.is_file() else math.nan
        else:
            pretrain(config, progress=True)  # outside the timed run: the base model is shared by the recipes
            began = time.perf_counter()
            if is_run_dir(run_dir):
                console.print(f"interrupted before: resuming {run_dir}")
                resume_experiment(run_dir, console=console, expected=config)
            else:
                run_experiment(config, console=console)
            wall = time.perf_counter() - began
            atomic_write_json(run_dir / "ablation.json", {"wall_seconds": wall, "recipe": recipe.name, "seed": seed})
            timed.append(wall)
        results.append(collect(run_dir, recipe.name, seed, wall))
        write_outputs(out, results, names, command, budget, seed_list)
    console.rule(f"ablation done in {(time.perf_counter() - start) / 60:.1f} min")
    console.print(f"results: {out / 'results.md'}, {out / 'accuracy.png'}")
    return out
